"""The operator's admin API under /admin/v1: accounts, tokens, grants, prices, reconcile."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import Principal
from creditgate.api import idempotent
from creditgate.api.auth import principal
from creditgate.api.responses import JSON, read_object
from creditgate.api.schemas import admin as schema
from creditgate.api.schemas.common import Empty, idempotency_header, operation
from creditgate.api.state import services
from creditgate.errors import ValidationError
from creditgate.views import account_view, entry_view, postpaid_limits_view, token_view
from creditgate.workflows import accounts, grants, prices, spending_limits
from creditgate.workflows import reconcile as books
from creditgate.workflows.grants import MAX_CENTS


async def operator(caller: Principal = Depends(principal)) -> Principal:
    caller.require_operator()
    return caller


router = APIRouter(prefix="/admin/v1", dependencies=[Depends(operator)])


# Query bounds for the docs only: the route checks them itself, with its own messages.
LIMIT_1000 = Query(100, json_schema_extra={"minimum": 1, "maximum": 1000})
BEFORE_ID = Query(None, json_schema_extra={"minimum": 1, "maximum": 2**63 - 1})


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


@router.post("/accounts", **operation(ok=schema.Account, status=201, body=schema.AccountCreate, errors=[409]))
async def create_account(request: Request) -> Response:
    body = await read_object(request, allowed={"id", "name", "mode", "postpaid_limit_cents"})
    account_id = _str_field(body, "id", required=True, max_len=64)
    mode = _str_field(body, "mode") or "prepaid"
    postpaid_limit = _int_field(body, "postpaid_limit_cents", minimum=0, required=False) or 0
    row = await accounts.create_account(
        services(request),
        str(account_id),
        name=_str_field(body, "name", max_len=200),
        mode=mode,
        postpaid_limit_cents=postpaid_limit,
    )
    return JSON(account_view(row), status_code=201)


@router.get("/accounts", **operation(ok=schema.AccountList))
async def list_accounts(request: Request, after: str | None = None, limit: int = LIMIT_1000) -> Response:
    if not 1 <= limit <= 1000:
        raise ValidationError("limit must be between 1 and 1000", field="limit")
    rows = await accounts.list_accounts(services(request), limit=limit, after=after)
    return JSON({"accounts": [account_view(r) for r in rows]})


@router.get("/accounts/{account_id}", **operation(ok=schema.Account, errors=[404]))
async def get_account(request: Request, account_id: str) -> Response:
    return JSON(account_view(await accounts.get_account(services(request), account_id)))


# Postpaid spending limits: the operator sets the hard limit; the soft one is the customer's.
@router.get("/accounts/{account_id}/postpaid-limit", **operation(ok=schema.PostpaidLimit, errors=[404]))
async def get_postpaid_limit(request: Request, account_id: str) -> Response:
    return JSON(postpaid_limits_view(await spending_limits.get_limits(services(request), account_id)))


@router.put(
    "/accounts/{account_id}/postpaid-limit",
    **operation(ok=schema.PostpaidLimit, body=schema.PostpaidLimitSet, errors=[404]),
)
async def put_postpaid_limit(request: Request, account_id: str) -> Response:
    """Set the hard limit (the operator's ceiling on what the account may owe; 0: prepaid
    only). The customer's soft limit is kept; the effective limit is the lower of the two."""
    body = await read_object(request, allowed={"hard_limit_cents"})
    hard = _int_field(body, "hard_limit_cents", minimum=0)
    limits = await spending_limits.set_hard_limit(services(request), account_id, int(hard or 0))
    return JSON(postpaid_limits_view(limits))


@router.post(
    "/accounts/{account_id}/tokens",
    **operation(ok=schema.TokenIssued, status=201, body=schema.TokenCreate, errors=[404]),
)
async def create_token(request: Request, account_id: str) -> Response:
    body = await read_object(request, allowed={"scope", "name"})
    issued = await accounts.create_token(
        services(request),
        account_id,
        scope=str(_str_field(body, "scope", required=True)),
        name=_str_field(body, "name", max_len=200),
    )
    return JSON(
        {"id": issued.id, "account_id": issued.account_id, "scope": issued.scope, "token": issued.token},
        status_code=201,
    )


@router.get("/accounts/{account_id}/tokens", **operation(ok=schema.TokenList, errors=[404]))
async def list_tokens(request: Request, account_id: str) -> Response:
    rows = await accounts.list_tokens(services(request), account_id)
    return JSON({"tokens": [token_view(r) for r in rows]})


@router.delete("/accounts/{account_id}/tokens/{token_id}", **operation(ok=Empty, errors=[404]))
async def revoke_token(request: Request, account_id: str, token_id: str) -> Response:
    await accounts.revoke_token(services(request), account_id, token_id)
    return JSON({})


@router.post(
    "/accounts/{account_id}/grants",
    **operation(
        ok=schema.LedgerEntry,
        status=201,
        body=schema.GrantCreate,
        errors=[404, 409],
        parameters=[idempotency_header()],
    ),
)
async def grant_credits(request: Request, account_id: str) -> Response:
    """A promotional grant (optionally expiring). Honours Idempotency-Key."""
    svc = services(request)
    body = await read_object(request, allowed={"amount_cents", "expires_at", "reason"})
    amount = _int_field(body, "amount_cents", minimum=1)
    now = svc.clock()
    expires_at = grants.parse_expiry(_str_field(body, "expires_at"), now)
    grant = grants.Grant(
        account_id, int(amount or 0), reason=_str_field(body, "reason"), expires_at=expires_at
    )

    async def work(conn: AsyncConnection) -> tuple[int, Any]:
        return 201, entry_view(await grants.post(conn, grant, now))

    return await idempotent.run(request, account_id, "operator", work)


@router.post(
    "/accounts/{account_id}/adjustments",
    **operation(
        ok=schema.LedgerEntry,
        status=201,
        body=schema.AdjustmentCreate,
        errors=[404, 409],
        parameters=[idempotency_header()],
    ),
)
async def adjust(request: Request, account_id: str) -> Response:
    """A signed correction in cents, with a required reason. Honours Idempotency-Key."""
    svc = services(request)
    body = await read_object(request, allowed={"amount_cents", "reason"})
    amount = _int_field(body, "amount_cents")
    reason = _str_field(body, "reason", required=True)
    if amount == 0:
        raise ValidationError("amount_cents must not be 0", field="amount_cents")
    adjustment = grants.Adjustment(account_id, int(amount or 0), str(reason))
    now = svc.clock()

    async def work(conn: AsyncConnection) -> tuple[int, Any]:
        return 201, entry_view(await grants.post(conn, adjustment, now))

    return await idempotent.run(request, account_id, "operator", work)


@router.get("/accounts/{account_id}/ledger", **operation(ok=schema.EntryList, errors=[404]))
async def ledger_entries(
    request: Request, account_id: str, before_id: int | None = BEFORE_ID, limit: int = LIMIT_1000
) -> Response:
    if not 1 <= limit <= 1000:
        raise ValidationError("limit must be between 1 and 1000", field="limit")
    if before_id is not None and not 0 < before_id < 2**63:
        raise ValidationError("before_id must be a positive entry id", field="before_id")
    found = await accounts.account_with_entries(
        services(request), account_id, limit=limit, before_id=before_id
    )
    return JSON({"entries": [entry_view(r) for r in found.entries]})


@router.get("/prices", **operation(ok=schema.PriceList))
async def list_prices(request: Request) -> Response:
    return JSON({"prices": await prices.list_prices(services(request))})


@router.post(
    "/prices",
    **operation(
        ok=schema.PriceImportResult,
        status=201,
        extra_ok={200: schema.PriceImportResult},
        body=schema.PriceImport,
        errors=[409],
    ),
)
async def import_prices(request: Request) -> Response:
    body = await read_object(request, allowed={"prices"})
    done = await prices.import_prices(services(request), body.get("prices"))
    return JSON(
        {"inserted": done.inserted, "unchanged": done.unchanged}, status_code=201 if done.inserted else 200
    )


@router.get("/reconcile", **operation(ok=schema.ReconcileReport, extra_ok={500: schema.ReconcileReport}))
async def reconcile(request: Request) -> Response:
    report = await books.reconcile(services(request))
    return JSON(report, status_code=200 if report["ok"] else 500)
