"""The operator's admin API under /admin/v1: accounts, tokens, grants, prices, reconcile."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from creditgate.accounts import service as accounts
from creditgate.accounts.principal import Principal
from creditgate.api import idempotent
from creditgate.api.auth import forget_cached_tokens, principal
from creditgate.api.responses import JSON, read_object
from creditgate.api.state import services
from creditgate.api.views import account_view, entry_view, token_view
from creditgate.billing.reconcile import reconcile_report
from creditgate.clock import parse_iso
from creditgate.errors import ValidationError
from creditgate.ledger import service as ledger
from creditgate.metering import catalog as prices
from creditgate.money import MAX_AMOUNT, UNITS_PER_CENT, cents


async def operator(caller: Principal = Depends(principal)) -> Principal:
    caller.require_operator()
    return caller


router = APIRouter(prefix="/admin/v1", dependencies=[Depends(operator)])


MAX_CENTS = MAX_AMOUNT // UNITS_PER_CENT  # $1,000,000,000


def _int_field(
    body: dict[str, Any], name: str, *, minimum: int | None = None, required: bool = True
) -> int | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer", field=name)
    if minimum is not None and value < minimum:
        raise ValidationError(f"{name} must be >= {minimum}", field=name)
    if abs(value) > MAX_CENTS:
        raise ValidationError(f"{name} must be at most {MAX_CENTS} in size", field=name)
    return value


def _str_field(body: dict[str, Any], name: str, *, required: bool = False, max_len: int = 500) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ValidationError(
            f"{name} must be a non-empty string of at most {max_len} characters", field=name
        )
    return value


def parse_expiry(value: str | None, now: datetime) -> datetime | None:
    """An optional future ISO 8601 expiry."""
    if value is None:
        return None
    try:
        moment = parse_iso(value)
    except ValueError as exc:
        raise ValidationError(f"expires_at must be an ISO 8601 timestamp: {exc}", field="expires_at") from exc
    if moment <= now:
        raise ValidationError("expires_at must be in the future", field="expires_at")
    return moment


@router.post("/accounts")
async def create_account(request: Request) -> Response:
    svc = services(request)
    body = await read_object(request, allowed={"id", "name", "mode", "credit_limit_cents"})
    account_id = _str_field(body, "id", required=True, max_len=64)
    mode = _str_field(body, "mode") or "prepaid"
    credit_limit = _int_field(body, "credit_limit_cents", minimum=0, required=False) or 0
    async with svc.db.write() as conn:
        row = await accounts.create_account(
            conn,
            str(account_id),
            name=_str_field(body, "name", max_len=200),
            mode=mode,
            credit_limit=cents(credit_limit),
            now=svc.clock(),
        )
    return JSON(account_view(row), status_code=201)


@router.get("/accounts")
async def list_accounts(request: Request, after: str | None = None, limit: int = 100) -> Response:
    svc = services(request)
    if not 1 <= limit <= 1000:
        raise ValidationError("limit must be between 1 and 1000", field="limit")
    async with svc.db.read() as conn:
        rows = await ledger.list_accounts(conn, limit=limit, after=after)
    return JSON({"accounts": [account_view(r) for r in rows]})


@router.get("/accounts/{account_id}")
async def get_account(request: Request, account_id: str) -> Response:
    async with services(request).db.read() as conn:
        return JSON(account_view(await ledger.get_account(conn, account_id)))


@router.post("/accounts/{account_id}/tokens")
async def create_token(request: Request, account_id: str) -> Response:
    svc = services(request)
    body = await read_object(request, allowed={"scope", "name"})
    async with svc.db.write() as conn:
        issued = await accounts.create_token(
            conn,
            account_id,
            scope=str(_str_field(body, "scope", required=True)),
            name=_str_field(body, "name", max_len=200),
            now=svc.clock(),
        )
    return JSON(
        {"id": issued.id, "account_id": issued.account_id, "scope": issued.scope, "token": issued.token},
        status_code=201,
    )


@router.get("/accounts/{account_id}/tokens")
async def list_tokens(request: Request, account_id: str) -> Response:
    async with services(request).db.read() as conn:
        rows = await accounts.list_tokens(conn, account_id)
    return JSON({"tokens": [token_view(r) for r in rows]})


@router.delete("/accounts/{account_id}/tokens/{token_id}")
async def revoke_token(request: Request, account_id: str, token_id: str) -> Response:
    svc = services(request)
    async with svc.db.write() as conn:
        await accounts.revoke_token(conn, account_id, token_id, svc.clock())
    forget_cached_tokens()
    return JSON({})


@router.post("/accounts/{account_id}/grants")
async def grant_credits(request: Request, account_id: str) -> Response:
    """A promotional grant (optionally expiring). Honours Idempotency-Key."""
    svc = services(request)
    body = await read_object(request, allowed={"amount_cents", "expires_at", "reason"})
    amount = _int_field(body, "amount_cents", minimum=1)
    now = svc.clock()
    expires_at = parse_expiry(_str_field(body, "expires_at"), now)
    reason = _str_field(body, "reason")

    async def work(conn: Any) -> tuple[int, Any]:
        posting = ledger.Posting(
            account_id, "grant", cents(int(amount or 0)), reason=reason, expires_at=expires_at
        )
        await ledger.post(conn, [posting], now)
        entries = await ledger.list_entries(conn, account_id, limit=1)
        return 201, entry_view(entries[0])

    return await idempotent.run(request, "operator", work)


@router.post("/accounts/{account_id}/adjustments")
async def adjust(request: Request, account_id: str) -> Response:
    """A signed correction in cents, with a required reason. Honours Idempotency-Key."""
    svc = services(request)
    body = await read_object(request, allowed={"amount_cents", "reason"})
    amount = _int_field(body, "amount_cents")
    reason = _str_field(body, "reason", required=True)
    if amount == 0:
        raise ValidationError("amount_cents must not be 0", field="amount_cents")
    now = svc.clock()

    async def work(conn: Any) -> tuple[int, Any]:
        await ledger.post(
            conn, [ledger.Posting(account_id, "adjustment", cents(int(amount or 0)), reason=reason)], now
        )
        return 201, entry_view((await ledger.list_entries(conn, account_id, limit=1))[0])

    return await idempotent.run(request, "operator", work)


@router.get("/accounts/{account_id}/ledger")
async def ledger_entries(
    request: Request, account_id: str, before_id: int | None = None, limit: int = 100
) -> Response:
    if not 1 <= limit <= 1000:
        raise ValidationError("limit must be between 1 and 1000", field="limit")
    if before_id is not None and not 0 < before_id < 2**63:
        raise ValidationError("before_id must be a positive entry id", field="before_id")
    async with services(request).db.read() as conn:
        await ledger.get_account(conn, account_id)
        rows = await ledger.list_entries(conn, account_id, limit=limit, before_id=before_id)
    return JSON({"entries": [entry_view(r) for r in rows]})


@router.get("/prices")
async def list_prices(request: Request) -> Response:
    svc = services(request)
    async with svc.db.read() as conn:
        await svc.catalog.refresh(conn)
        rows = await prices.list_prices(conn)
    return JSON({"prices": [prices.price_to_wire(r) for r in rows]})


@router.post("/prices")
async def import_prices(request: Request) -> Response:
    svc = services(request)
    body = await read_object(request, allowed={"prices"})
    now = svc.clock()
    raw_rows = body.get("prices")
    if not isinstance(raw_rows, list):
        raise ValidationError("prices must be a list", field="prices")
    rows = prices.parse_price_rows(raw_rows, now)
    async with svc.db.write() as conn:
        inserted, unchanged = await prices.import_prices(conn, rows, now)
    return JSON({"inserted": inserted, "unchanged": unchanged}, status_code=201 if inserted else 200)


@router.get("/reconcile")
async def reconcile(request: Request) -> Response:
    async with services(request).db.read() as conn:
        report = await reconcile_report(conn)
    return JSON(report, status_code=200 if report["ok"] else 500)
