"""The operator console under /console, signed in with the operator token: the accounts list
(search, paging), one account's page (balance, usage, credit grants and adjustments, tokens,
ledger, webhook deliveries, a portal link) and reconcile status. Every read and write goes
through the workflows the admin API and the CLI call."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from creditgate.errors import Conflict, ValidationError
from creditgate.web import flash
from creditgate.web.forms import Form, change
from creditgate.web.sessions import PORTAL, WebSession, context, operator_session, set_session_cookie
from creditgate.web.templating import money, render
from creditgate.web.usage import usage_csv, usage_view
from creditgate.workflows import accounts, console, grants, portal, portal_reads
from creditgate.workflows.context import Context

router = APIRouter(prefix="/console", include_in_schema=False)
ACCOUNTS_PAGE = 25
LEDGER_PAGE = 50
WEBHOOK_PAGE = 20
SCOPES = ("read", "write", "gateway")
CREDIT_KINDS = ("grant", "adjustment")


def _account_url(account_id: str, tail: str = "") -> str:
    return f"/console/accounts/{quote(account_id, safe='')}{tail}"


def _query_text(request: Request, name: str, max_len: int = 200) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and len(value) > max_len:
        raise ValidationError(f"{name} is longer than {max_len} characters", field=name)
    return value


@router.get("")
async def account_list(request: Request, web: WebSession = Depends(operator_session)) -> Response:
    """Accounts with balance, month-to-date spend and status; search by id or name."""
    page = await console.list_accounts(
        context(request),
        search=_query_text(request, "q") or "",
        after=_query_text(request, "after", 64),
        limit=ACCOUNTS_PAGE,
    )
    return render(request, "console/accounts.html", title="Accounts", page=page, account_url=_account_url)


async def _account_page(request: Request, account_id: str, *, status: int = 200, **shown: Any) -> Response:
    """One account's overview; `shown` carries what a form just produced (a new token's
    secret, a portal link, the form's error)."""
    ctx = context(request)
    row = await console.account_row(ctx, account_id)
    once = {"new_token": None, "portal_link": None, "form_error": None} | shown
    return render(
        request,
        "console/account.html",
        status=status,
        title=row.account.name,
        row=row,
        balance=await portal_reads.balance(ctx, account_id),
        tokens=await accounts.list_tokens(ctx, account_id),
        recent=await console.ledger_page(ctx, account_id, limit=5),
        account_url=_account_url,
        section="overview",
        form_key=console.new_form_key(),
        **once,
    )


@router.get("/accounts/{account_id}")
async def account_page(
    request: Request, account_id: str, web: WebSession = Depends(operator_session)
) -> Response:
    return await _account_page(request, account_id)


def _credit(form: Form, account_id: str) -> grants.Grant | grants.Adjustment:
    kind = form.choice("kind", "what to post", CREDIT_KINDS)
    reason = form.required("reason", "a reason", max_len=500)
    raw = form.required("amount", "an amount", max_len=40).replace(",", "").replace("$", "").strip()
    amount_cents = console.parse_cents(raw, signed=kind == "adjustment")
    if kind == "grant":
        return grants.Grant(account_id, amount_cents, reason=reason)
    return grants.Adjustment(account_id, amount_cents, reason=reason)


@router.post("/accounts/{account_id}/credit")
async def post_credit(
    request: Request, account_id: str, web: WebSession = Depends(operator_session)
) -> Response:
    """Grant credit or post a signed adjustment, with a reason; once per rendered form."""
    form = await change(request, web)
    try:
        credit = _credit(form, account_id)
        posted_entry = await console.post_credit_once(
            context(request), credit, form.fields.get("form_key", "")
        )
    except (ValidationError, Conflict) as exc:
        return await _account_page(request, account_id, status=exc.status, form_error=exc.message)
    response = RedirectResponse(_account_url(account_id, "/ledger"), status_code=303)
    verb = "Granted" if isinstance(credit, grants.Grant) else "Adjusted by"
    note = "" if posted_entry.new else " (this form was already sent: nothing more was posted)"
    flash.add(response, "ok", f"{verb} {money(posted_entry.entry.amount)}{note}.")
    return response


@router.post("/accounts/{account_id}/tokens")
async def create_token(
    request: Request, account_id: str, web: WebSession = Depends(operator_session)
) -> Response:
    """Issue a token and show its secret on this response only (never stored in clear)."""
    form = await change(request, web)
    ctx = context(request)
    try:
        scope = form.choice("scope", "a scope", SCOPES)
        issued = await accounts.create_token(
            ctx, account_id, scope=scope, name=form.text("name", max_len=200)
        )
    except ValidationError as exc:
        return await _account_page(request, account_id, status=exc.status, form_error=exc.message)
    return await _account_page(request, account_id, status=201, new_token=issued)


@router.post("/accounts/{account_id}/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, account_id: str, token_id: str, web: WebSession = Depends(operator_session)
) -> Response:
    await change(request, web)
    await accounts.revoke_token(context(request), account_id, token_id)  # evicts in every process
    response = RedirectResponse(_account_url(account_id), status_code=303)
    flash.add(response, "ok", f"Token {token_id} is revoked.")
    return response


@router.post("/accounts/{account_id}/portal-link")
async def portal_link(
    request: Request, account_id: str, web: WebSession = Depends(operator_session)
) -> Response:
    """A one-time portal link to hand to the customer, shown on this response."""
    await change(request, web)
    link = await portal.create_link(context(request), account_id)
    return await _account_page(request, account_id, status=201, portal_link=link)


@router.post("/accounts/{account_id}/portal-view")
async def portal_view(
    request: Request, account_id: str, web: WebSession = Depends(operator_session)
) -> Response:
    """Open the account's portal in this browser with a read-only session: every portal page
    (balance, top-ups, auto top-up, limits, usage, invoices, cards, billing info) as the
    customer sees it, changing nothing."""
    await change(request, web)
    ctx = context(request)
    back = ctx.settings.base_url.rstrip("/") + _account_url(account_id)
    opened = await console.open_portal_view(ctx, account_id, return_url=back)
    response = RedirectResponse(PORTAL.prefix, status_code=303)
    set_session_cookie(request, response, PORTAL, opened)
    return response


def _int_param(request: Request, name: str) -> int | None:
    text = _query_text(request, name, 20)
    if text is None:
        return None
    if not text.isdigit():
        raise ValidationError(f"{name} must be a whole number", field=name)
    return int(text)


@router.get("/accounts/{account_id}/ledger")
async def ledger(request: Request, account_id: str, web: WebSession = Depends(operator_session)) -> Response:
    """The ledger, newest first, with the running balance after each entry."""
    ctx = context(request)
    page = await console.ledger_page(
        ctx, account_id, before_id=_int_param(request, "before"), limit=LEDGER_PAGE
    )
    row = await console.account_row(ctx, account_id)
    return render(
        request,
        "console/ledger.html",
        title="Ledger",
        row=row,
        page=page,
        section="ledger",
        account_url=_account_url,
    )


@router.get("/accounts/{account_id}/webhooks")
async def webhooks(
    request: Request, account_id: str, web: WebSession = Depends(operator_session)
) -> Response:
    """Outgoing webhook events of the account, their deliveries and every attempt."""
    ctx = context(request)
    page = await console.webhook_page(
        ctx, account_id, before=_query_text(request, "before", 40), limit=WEBHOOK_PAGE
    )
    row = await console.account_row(ctx, account_id)
    return render(
        request,
        "console/webhooks.html",
        title="Webhooks",
        row=row,
        page=page,
        section="webhooks",
        account_url=_account_url,
    )


@router.get("/accounts/{account_id}/usage")
async def usage(request: Request, account_id: str, web: WebSession = Depends(operator_session)) -> Response:
    """The same usage view the customer sees in the portal."""
    ctx = context(request)
    row = await console.account_row(ctx, account_id)
    view, day_error = await usage_view(ctx, account_id, request.query_params.get("day"))
    return render(
        request,
        "console/usage.html",
        status=400 if day_error else 200,
        title="Usage",
        row=row,
        usage=view,
        day_error=day_error,
        usage_url=_account_url(account_id, "/usage"),
        section="usage",
        account_url=_account_url,
    )


@router.get("/accounts/{account_id}/usage.csv")
async def usage_export(
    request: Request, account_id: str, web: WebSession = Depends(operator_session)
) -> Response:
    ctx: Context = context(request)
    await console.account_row(ctx, account_id)  # NotFound for an unknown account
    return await usage_csv(ctx, request, account_id)


@router.get("/reconcile")
async def reconcile(request: Request, web: WebSession = Depends(operator_session)) -> Response:
    """Run the reconcile checks over every account and show what failed."""
    report = await console.reconcile_status(context(request))
    return render(
        request, "console/reconcile.html", title="Reconcile", report=report, account_url=_account_url
    )
