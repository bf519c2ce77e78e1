"""Read models of the operator console: the accounts list (searchable, paged by id) with
balance, month-to-date spend and status; one account's ledger with running balances; its
outgoing webhooks with every attempt; reconcile status across all accounts.

Pages are keyset pages: each carries the cursor of the next one (None on the last page), and
a page holds at most MAX_PAGE rows whatever is asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from creditgate.accounts import idempotency
from creditgate.accounts import portal as portal_sessions
from creditgate.errors import ValidationError
from creditgate.ids import new_id
from creditgate.ledger import directory
from creditgate.ledger import service as ledger
from creditgate.ledger.rows import Account, Entry
from creditgate.limits.postpaid import effective_limit
from creditgate.metering import usage_report
from creditgate.money import UNITS_PER_CENT, parse_usd
from creditgate.notify import account_history
from creditgate.notify.account_history import Event
from creditgate.workflows import grants
from creditgate.workflows import reconcile as reconcile_workflow
from creditgate.workflows.context import Context
from creditgate.workflows.portal import OpenedSession

_Row = TypeVar("_Row", Account, Entry, Event)
MAX_PAGE = 100
MAX_SEARCH = 200


@dataclass(frozen=True)
class AccountRow:
    account: Account
    month_spend: int  # usage cost since the first of this UTC month, ledger units
    status: str  # see status_of

    @property
    def allowance(self) -> int:
        return allowance_of(self.account)

    @property
    def available(self) -> int:
        return available_of(self.account)


@dataclass(frozen=True)
class AccountPage:
    search: str
    rows: list[AccountRow]
    next_after: str | None  # the `after` of the next page


@dataclass(frozen=True)
class LedgerPage:
    account: Account
    entries: list[Entry]  # newest first; balance_after is the running balance
    next_before: int | None  # the `before_id` of the next (older) page


@dataclass(frozen=True)
class WebhookPage:
    account: Account
    events: list[Event]  # newest first, with deliveries and attempts
    next_before: str | None  # the `before` event id of the next (older) page


@dataclass(frozen=True)
class ReconcileStatus:
    ok: bool
    accounts_checked: int
    problems: list[dict[str, Any]]  # as in the reconcile report (one per failed check)
    checked_at: datetime

    @property
    def accounts_with_problems(self) -> list[str]:
        return sorted({p["account_id"] for p in self.problems})


def allowance_of(account: Account) -> int:
    """How far below zero the balance may go: the effective postpaid limit (limits.postpaid;
    0 for a prepaid account)."""
    return effective_limit(account.postpaid_hard_limit, account.postpaid_soft_limit)


def available_of(account: Account) -> int:
    """What authorize lets the account spend now: balance - held + the postpaid allowance."""
    return account.balance - account.held + allowance_of(account)


def status_of(account: Account) -> str:
    """`overdrawn` when the balance is below minus the postpaid allowance (below 0 when
    prepaid), `no credit` when nothing is left to spend once holds are counted, else `active`."""
    if account.balance + allowance_of(account) < 0:
        return "overdrawn"
    if available_of(account) <= 0:
        return "no credit"
    return "active"


def month_start(now: datetime) -> datetime:
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"a page holds 1 to {MAX_PAGE} rows", field="limit")
    return limit


def _keyset(found: list[_Row], size: int) -> tuple[list[_Row], Any]:
    """The page out of `size` + 1 rows read, and the id of its last row when more follow."""
    page = found[:size]
    return page, (page[-1].id if len(found) > size else None)


async def list_accounts(
    ctx: Context, *, search: str = "", after: str | None = None, limit: int = 25
) -> AccountPage:
    """Accounts whose id or name contains `search`, in id order, after the id `after`."""
    text = search.strip()
    if len(text) > MAX_SEARCH:
        raise ValidationError(f"search text is longer than {MAX_SEARCH} characters", field="q")
    size = page_size(limit)
    async with ctx.db.read() as conn:
        page, next_after = _keyset(
            await directory.search_accounts(conn, text, after=after, limit=size + 1), size
        )
        spend = await usage_report.spend_since(conn, [a.id for a in page], month_start(ctx.clock()))
    rows = [AccountRow(a, spend.get(a.id, 0), status_of(a)) for a in page]
    return AccountPage(text, rows, next_after)


async def account_row(ctx: Context, account_id: str) -> AccountRow:
    """One account with its month-to-date spend and status (NotFound when missing)."""
    async with ctx.db.read() as conn:
        account = await ledger.get_account(conn, account_id)
        spend = await usage_report.spend_since(conn, [account_id], month_start(ctx.clock()))
    return AccountRow(account, spend.get(account_id, 0), status_of(account))


async def ledger_page(
    ctx: Context, account_id: str, *, before_id: int | None = None, limit: int = 50
) -> LedgerPage:
    """The account's entries, newest first, older than `before_id` when given."""
    size = page_size(limit)
    async with ctx.db.read() as conn:
        account = await ledger.get_account(conn, account_id)
        found = await ledger.list_entries(conn, account_id, limit=size + 1, before_id=before_id)
    return LedgerPage(account, *_keyset(found, size))


async def webhook_page(
    ctx: Context, account_id: str, *, before: str | None = None, limit: int = 20
) -> WebhookPage:
    """The account's outgoing webhook events, newest first, with deliveries and attempts."""
    size = page_size(limit)
    async with ctx.db.read() as conn:
        account = await ledger.get_account(conn, account_id)
        found = await account_history.account_events(conn, account_id, before=before, limit=size + 1)
    return WebhookPage(account, *_keyset(found, size))


async def reconcile_status(ctx: Context) -> ReconcileStatus:
    """Run the reconcile checks over every account (workflows.reconcile)."""
    report = await reconcile_workflow.reconcile(ctx)
    return ReconcileStatus(report["ok"], report["accounts_checked"], report["problems"], ctx.clock())


@dataclass(frozen=True)
class PostedCredit:
    entry: Entry
    new: bool  # False: this form was posted before, and `entry` is what it posted then


FORM_SCOPE = "console-credit"


def new_form_key() -> str:
    """A key for one rendered credit form: posting the form twice posts once."""
    return new_id("form")


def parse_cents(text: str, *, signed: bool) -> int:
    """A dollar amount typed by the operator ("25", "-3.50") as whole cents; only an
    adjustment (`signed`) may be negative. Bounds are checked by workflows.grants."""
    try:
        units = parse_usd(text)
    except ValueError as exc:
        raise ValidationError(f"amount {exc}, such as 25.00", field="amount") from None
    if units % UNITS_PER_CENT:
        raise ValidationError("amount must be whole cents, such as 25.00", field="amount")
    if units == 0 or (units < 0 and not signed):
        raise ValidationError(
            "amount must not be 0" if signed else "a grant must be more than zero", field="amount"
        )
    return units // UNITS_PER_CENT


async def post_credit_once(
    ctx: Context, change: grants.Grant | grants.Adjustment, form_key: str
) -> PostedCredit:
    """Post a grant or an adjustment (workflows.grants) unless this form key already posted
    one: the key is claimed in the same transaction, as the admin API's Idempotency-Key is.
    The same key with other values is a Conflict."""
    idempotency.check_key(form_key)
    kind = "grant" if isinstance(change, grants.Grant) else "adjustment"
    request = f"{kind}\n{change.amount_cents}\n{change.reason or ''}".encode()
    request_hash = idempotency.request_hash("POST", f"console/{change.account_id}/credit", request)
    async with ctx.db.write() as conn:
        now = ctx.clock()
        stored = await idempotency.claim(conn, change.account_id, FORM_SCOPE, form_key, request_hash, now)
        if stored is not None:
            entry_id = int(stored.body)
            entries = await ledger.list_entries(conn, change.account_id, limit=1, before_id=entry_id + 1)
            return PostedCredit(entries[0], new=False)
        entry = await grants.post(conn, change, now)
        await idempotency.finish(
            conn, change.account_id, FORM_SCOPE, form_key, idempotency.StoredResponse(201, str(entry.id))
        )
    return PostedCredit(entry, new=True)


async def open_portal_view(ctx: Context, account_id: str, *, return_url: str) -> OpenedSession:
    """A read-only portal session for the operator to see the account's portal exactly as
    its customer does (NotFound without the account); the portal offers `return_url`."""
    async with ctx.db.write() as conn:
        await ledger.get_account(conn, account_id)
        token, session = await portal_sessions.start_session(
            conn,
            account_id,
            "read",
            ctx.clock(),
            timedelta(hours=ctx.settings.portal_session_hours),
            return_url=return_url,
        )
    return OpenedSession(token, session)
