"""The ledger: append-only entries and a cached balance that always equals their sum.

Every posting locks its accounts first (ordered by id), skips a `ref` that was already
posted (so replays are harmless), writes the entries with their running balance and moves
the cached balance in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.errors import Conflict, NotFound, ValidationError
from creditgate.ledger import repository as repo
from creditgate.ledger.expiry import expiry_ref, unused_remainders
from creditgate.ledger.rows import Account, Entry, Posted
from creditgate.money import MAX_AMOUNT, UNITS_PER_USD

ACCOUNT_MODES = ("prepaid", "postpaid")

# kind -> allowed sign of the amount: +1 credit only, -1 debit only, 0 either (never zero)
ENTRY_KINDS: dict[str, int] = {
    "topup": +1,
    "grant": +1,
    "usage": -1,
    "adjustment": 0,
    "refund": 0,
    "expiry": -1,
    "payment": +1,  # a monthly (postpaid) invoice paid by card: billing.statement_charges
}


@dataclass(frozen=True)
class Posting:
    """One intended ledger entry. `ref` makes it idempotent per account."""

    account_id: str
    kind: str
    amount: int
    ref: str | None = None
    reason: str | None = None
    expires_at: datetime | None = None

    def check(self) -> None:
        sign = ENTRY_KINDS.get(self.kind)
        if sign is None:
            raise ValidationError(f"unknown entry kind {self.kind!r}", field="kind")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise ValidationError("amount must be an integer of ledger units", field="amount")
        # An expiry of a fully used grant is recorded with amount 0, so it happens exactly once.
        zero_ok = self.kind == "expiry"
        if (
            (self.amount == 0 and not zero_ok)
            or (sign == 1 and self.amount < 0)
            or (sign == -1 and self.amount > 0)
        ):
            raise ValidationError(f"a {self.kind} entry cannot have amount {self.amount}", field="amount")
        if abs(self.amount) > MAX_AMOUNT:
            raise ValidationError("amount is larger than one entry may move", field="amount")
        if self.expires_at is not None and self.kind != "grant":
            raise ValidationError("only grants can expire", field="expires_at")


@dataclass(frozen=True)
class Mismatch:
    account_id: str
    cached_balance: int
    sum_of_entries: int
    last_running_balance: int


async def lock(conn: AsyncConnection, account_ids: Iterable[str]) -> dict[str, int]:
    """Lock accounts for this transaction (id order) and return their balances; missing ids
    are simply absent. Pass the result to `post(locked=...)` to skip a second lock (`post`
    only reads it)."""
    return await repo.lock_balances(conn, account_ids)


async def post(
    conn: AsyncConnection,
    postings: list[Posting],
    now: datetime,
    *,
    locked: Mapping[str, int] | None = None,
) -> Posted:
    """Apply postings atomically. `locked`: the balances `lock` returned in this transaction
    (read, never changed). Returns, per posting, whether it was new (False = its ref was
    already posted), and the balances of the posted accounts afterwards. Unknown accounts
    raise NotFound and nothing is written."""
    if not postings:
        return Posted([], {})
    for p in postings:
        p.check()
    if locked is None:
        locked = await repo.lock_balances(conn, (p.account_id for p in postings))
    balances = {p.account_id: locked[p.account_id] for p in postings if p.account_id in locked}
    for p in postings:
        if p.account_id not in balances:
            raise NotFound(f"no account {p.account_id!r}", field="account_id")
    seen = await _already_posted(conn, postings)
    applied: list[bool] = []
    rows: list[dict[str, Any]] = []
    deltas: dict[str, int] = {}
    for p in postings:
        key = (p.account_id, p.ref)
        if p.ref is not None and key in seen:
            applied.append(False)
            continue
        if p.ref is not None:
            seen.add(key)
        balances[p.account_id] += p.amount
        check_bound(p.account_id, balances[p.account_id])
        deltas[p.account_id] = deltas.get(p.account_id, 0) + p.amount
        rows.append(
            {
                "account_id": p.account_id,
                "kind": p.kind,
                "amount": p.amount,
                "balance_after": balances[p.account_id],
                "ref": p.ref,
                "reason": p.reason,
                "expires_at": p.expires_at,
                "created_at": now,
            }
        )
        applied.append(True)
    await repo.insert_entries(conn, rows)
    await repo.add_to_balances(conn, deltas)
    return Posted(applied, balances)


def check_bound(account_id: str, balance: int) -> None:
    """ValidationError (nothing is written) when a balance would pass the largest allowed."""
    if abs(balance) > MAX_AMOUNT:
        raise ValidationError(
            f"this would take the balance of {account_id!r} beyond the largest allowed "
            f"(+/- {MAX_AMOUNT // UNITS_PER_USD} USD); nothing was written",
            field="amount",
        )


async def pending_costs(conn: AsyncConnection, account_ids: Iterable[str] | None = None) -> dict[str, int]:
    """Per account, the cost of its usage accepted but not applied yet (`usage_pending`): every
    balance this module reads is the cached balance less it. None: every account."""
    return await repo.pending_costs(conn, account_ids)


async def read_balances(conn: AsyncConnection, account_ids: Iterable[str]) -> dict[str, int]:
    """Balances (pending usage counted) of the accounts that exist, without locking them."""
    return await repo.read_balances(conn, account_ids)


async def _already_posted(conn: AsyncConnection, postings: list[Posting]) -> set[tuple[str, str | None]]:
    by_account: dict[str, list[str]] = {}
    for p in postings:
        if p.ref is not None:
            by_account.setdefault(p.account_id, []).append(p.ref)
    seen: set[tuple[str, str | None]] = set()
    for account_id, refs in by_account.items():
        seen.update((account_id, ref) for ref in await repo.existing_refs(conn, account_id, refs))
    return seen


def check_postpaid_hard_limit(mode: str, hard_limit: int) -> None:
    """The operator's postpaid ceiling: 0 to the largest amount, and 0 on a prepaid account
    (its statements bill nothing on account, so it may never run on account)."""
    if isinstance(hard_limit, bool) or not isinstance(hard_limit, int) or not 0 <= hard_limit <= MAX_AMOUNT:
        raise ValidationError(
            "the postpaid limit must be between 0 and the largest amount", field="postpaid_limit"
        )
    if hard_limit and mode != "postpaid":
        raise ValidationError(
            "only a postpaid account can have a postpaid limit above 0", field="postpaid_limit"
        )


async def open_account(
    conn: AsyncConnection,
    account_id: str,
    *,
    name: str,
    mode: str,
    now: datetime,
    postpaid_limit: int = 0,
    currency: str = "USD",
) -> Account:
    """Create the account row that carries the balance, with the operator's postpaid ceiling
    (`postpaid_limit`, ledger units) and no soft limit. Conflict if the id is taken."""
    if mode not in ACCOUNT_MODES:
        raise ValidationError("mode must be prepaid or postpaid", field="mode")
    check_postpaid_hard_limit(mode, postpaid_limit)
    if await repo.get_account(conn, account_id) is not None:
        raise Conflict(f"account {account_id!r} already exists", field="id")
    try:
        await repo.insert_account(
            conn,
            {
                "id": account_id,
                "name": name,
                "currency": currency,
                "mode": mode,
                "postpaid_hard_limit": postpaid_limit,
                "postpaid_soft_limit": None,
                "balance": 0,
                "held": 0,
                "created_at": now,
            },
        )
    except IntegrityError as exc:  # a concurrent create won the race
        raise Conflict(f"account {account_id!r} already exists", field="id") from exc
    return await get_account(conn, account_id)


async def get_account(conn: AsyncConnection, account_id: str) -> Account:
    """The account, or NotFound."""
    account = await repo.get_account(conn, account_id)
    if account is None:
        raise NotFound(f"no account {account_id!r}")
    return account


async def get_accounts(conn: AsyncConnection, account_ids: list[str]) -> dict[str, Account]:
    return await repo.get_accounts(conn, account_ids)


async def list_accounts(
    conn: AsyncConnection, *, limit: int = 100, after: str | None = None
) -> list[Account]:
    return await repo.list_accounts(conn, limit=limit, after=after)


async def list_entries(
    conn: AsyncConnection, account_id: str, *, limit: int = 100, before_id: int | None = None
) -> list[Entry]:
    """Newest first."""
    return await repo.list_entries(conn, account_id, limit=limit, before_id=before_id)


async def reconcile(conn: AsyncConnection) -> tuple[int, list[Mismatch]]:
    """Check every account: cached balance == sum of entries == last running balance."""
    mismatches = [Mismatch(*row) for row in await repo.balance_mismatches(conn)]
    return await repo.count_accounts(conn), mismatches


async def total_by_kind(conn: AsyncConnection, kind: str) -> dict[str, int]:
    """Sum of entries of one kind per account."""
    return await repo.total_by_kind(conn, kind)


async def grants_due_to_expire(
    conn: AsyncConnection, now: datetime, *, limit: int = 500
) -> dict[str, list[int]]:
    """Grants past their expiry without an expiry entry yet: {account_id: [grant entry ids]}."""
    due: dict[str, list[int]] = {}
    for grant_id, account_id in await repo.grants_due_to_expire(conn, now, limit):
        due.setdefault(account_id, []).append(grant_id)
    return due


async def expire_grants(conn: AsyncConnection, account_id: str, grant_ids: list[int], now: datetime) -> int:
    """Post the `expiry` entry for each expired grant of one account: its unused remainder
    (see ledger.expiry), ref `expiry:<grant id>`, so a second runner posts nothing. Returns
    how many entries were new."""
    balances = await repo.lock_balances(conn, [account_id])
    if account_id not in balances:
        return 0
    remainders = unused_remainders(await repo.all_entries(conn, account_id), grant_ids)
    postings = [
        Posting(
            account_id,
            "expiry",
            -remainders[grant_id],
            ref=expiry_ref(grant_id),
            reason=f"unused credit of grant {grant_id} expired",
        )
        for grant_id in sorted(remainders)
    ]
    return (await post(conn, postings, now, locked=balances)).new_count
