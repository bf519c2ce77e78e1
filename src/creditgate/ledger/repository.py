"""SQL for the ledger. Only ledger.service imports this module."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, String, bindparam, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.db.driver import one_of, pg_driver
from creditgate.ledger.models import accounts, ledger_entries, usage_pending
from creditgate.ledger.rows import Account, Entry

# NO KEY UPDATE: excludes every other locker of the account as FOR UPDATE would, but not the
# key-share locks of foreign-key checks, so ingest (which inserts rows referencing accounts
# and locks none) never waits for an applier or an authorize. Account ids never change.
_PG_LOCK = "SELECT id, balance FROM accounts WHERE id = ANY($1::varchar[]) ORDER BY id FOR NO KEY UPDATE"
_PG_INSERT_ENTRIES = (
    "INSERT INTO ledger_entries "
    "(account_id, kind, amount, balance_after, ref, reason, expires_at, created_at) "
    "SELECT a, k, am, b, r, rs, x, $8::timestamptz FROM unnest($1::varchar[], $2::varchar[], "
    "$3::bigint[], $4::bigint[], $5::varchar[], $6::text[], $7::timestamptz[]) "
    "WITH ORDINALITY AS t(a, k, am, b, r, rs, x, n) ORDER BY n"
)
_PG_ADD_TO_BALANCES = (
    "UPDATE accounts SET balance = accounts.balance + d.delta "
    "FROM unnest($1::varchar[], $2::bigint[]) AS d(id, delta) WHERE accounts.id = d.id"
)


# What balance reads see: the cached balance less the usage accepted but not yet applied
# (ledger.models.usage_pending), so a read right after a usage answer reflects it.
_PENDING_COST = (
    select(func.coalesce(func.sum(usage_pending.c.cost), 0))
    .where(usage_pending.c.account_id == accounts.c.id)
    .scalar_subquery()
)
_ACCOUNT_READ = [c for c in accounts.c if c.name != "balance"] + [
    (accounts.c.balance - _PENDING_COST).label("balance")
]


async def pending_costs(conn: AsyncConnection, account_ids: Iterable[str] | None) -> dict[str, int]:
    """The cost of each account's usage accepted but not yet applied (absent: none); None:
    every account."""
    stmt = select(usage_pending.c.account_id, func.sum(usage_pending.c.cost)).group_by(
        usage_pending.c.account_id
    )
    if account_ids is not None:
        ids = sorted(set(account_ids))
        if not ids:
            return {}
        stmt = stmt.where(one_of(conn, usage_pending.c.account_id, ids))
    return {row[0]: int(row[1]) for row in await conn.execute(stmt)}


# The queue summed once for all the accounts (one scan, hashed), not a sub-plan per account:
# for a group of ~700 accounts the per-account form took 10 ms a call (pg_stat_statements).
_PG_BALANCES = (
    "SELECT a.id, a.balance - coalesce(p.cost, 0) FROM accounts a LEFT JOIN (SELECT account_id, "
    "sum(cost) AS cost FROM usage_pending WHERE account_id = ANY($1::varchar[]) GROUP BY 1) p "
    "ON p.account_id = a.id WHERE a.id = ANY($1::varchar[])"
)


async def read_balances(conn: AsyncConnection, account_ids: Iterable[str]) -> dict[str, int]:
    """Balances as reads see them (pending usage counted), without locking; missing ids are
    absent."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    if conn.dialect.name == "postgresql":
        driver = await pg_driver(conn)
        return {row[0]: int(row[1]) for row in await driver.fetch(_PG_BALANCES, ids)}
    stmt = select(accounts.c.id, _ACCOUNT_READ[-1]).where(accounts.c.id.in_(ids))
    return {row[0]: int(row[1]) for row in await conn.execute(stmt)}


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        name=row.name,
        currency=row.currency,
        mode=row.mode,
        postpaid_hard_limit=int(row.postpaid_hard_limit),
        postpaid_soft_limit=None if row.postpaid_soft_limit is None else int(row.postpaid_soft_limit),
        balance=int(row.balance),
        held=int(row.held),
        created_at=row.created_at,
    )


def _entry(row: Row[Any]) -> Entry:
    return Entry(
        id=int(row.id),
        account_id=row.account_id,
        kind=row.kind,
        amount=int(row.amount),
        balance_after=int(row.balance_after),
        ref=row.ref,
        reason=row.reason,
        expires_at=row.expires_at,
        created_at=row.created_at,
    )


async def lock_balances(conn: AsyncConnection, account_ids: Iterable[str]) -> dict[str, int]:
    """Lock the accounts (in id order, so concurrent batches never deadlock) and read their
    balances. On SQLite the writer already holds the database lock (BEGIN IMMEDIATE)."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    if conn.dialect.name == "postgresql":
        driver = await pg_driver(conn)
        return {row[0]: row[1] for row in await driver.fetch(_PG_LOCK, ids)}
    stmt = select(accounts.c.id, accounts.c.balance).where(accounts.c.id.in_(ids)).order_by(accounts.c.id)
    rows = await conn.execute(stmt)
    return {row.id: row.balance for row in rows}


async def existing_refs(conn: AsyncConnection, account_id: str, refs: Sequence[str]) -> set[str]:
    rows = await conn.execute(
        select(ledger_entries.c.ref).where(
            ledger_entries.c.account_id == account_id, ledger_entries.c.ref.in_(refs)
        )
    )
    return {row.ref for row in rows}


async def insert_entries(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Append entries; their ids follow the order of `rows` (running balances rely on it).
    One statement on PostgreSQL however many rows (all rows share one created_at there)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len({r["created_at"] for r in rows}) == 1:
        columns = ("account_id", "kind", "amount", "balance_after", "ref", "reason", "expires_at")
        driver = await pg_driver(conn)
        await driver.execute(
            _PG_INSERT_ENTRIES, *([r[c] for r in rows] for c in columns), rows[0]["created_at"]
        )
        return
    await conn.execute(ledger_entries.insert(), rows)


async def add_to_balances(conn: AsyncConnection, deltas: dict[str, int]) -> None:
    """Move cached balances by `deltas` (the rows are locked already; id order regardless)."""
    if conn.dialect.name == "postgresql" and len(deltas) > 1:
        ids = sorted(deltas)
        await (await pg_driver(conn)).execute(_PG_ADD_TO_BALANCES, ids, [deltas[i] for i in ids])
        return
    if not deltas:
        return
    stmt = (
        accounts.update()
        .where(accounts.c.id == bindparam("b_id"))
        .values(balance=accounts.c.balance + bindparam("b_delta"))
    )
    await conn.execute(stmt, [{"b_id": i, "b_delta": deltas[i]} for i in sorted(deltas)])


async def list_entries(
    conn: AsyncConnection, account_id: str, *, limit: int, before_id: int | None
) -> list[Entry]:
    stmt = select(ledger_entries).where(ledger_entries.c.account_id == account_id)
    if before_id is not None:
        stmt = stmt.where(ledger_entries.c.id < before_id)
    rows = await conn.execute(stmt.order_by(ledger_entries.c.id.desc()).limit(limit))
    return [_entry(row) for row in rows]


async def balance_mismatches(conn: AsyncConnection) -> list[tuple[str, int, int, int]]:
    """(account id, cached balance, sum of entries, last running balance) of the accounts
    whose cached balance differs from the sum of their entries, or from their last entry's
    running balance."""
    sums = (
        select(
            ledger_entries.c.account_id,
            func.sum(ledger_entries.c.amount).label("total"),
            func.max(ledger_entries.c.id).label("last_id"),
        )
        .group_by(ledger_entries.c.account_id)
        .subquery()
    )
    last = ledger_entries.alias("last")
    stmt = (
        select(
            accounts.c.id,
            accounts.c.balance,
            func.coalesce(sums.c.total, 0).label("total"),
            func.coalesce(last.c.balance_after, 0).label("last_balance"),
        )
        .select_from(accounts)
        .outerjoin(sums, sums.c.account_id == accounts.c.id)
        .outerjoin(last, (last.c.id == sums.c.last_id) & (last.c.account_id == sums.c.account_id))
        .where(
            (accounts.c.balance != func.coalesce(sums.c.total, 0))
            | (accounts.c.balance != func.coalesce(last.c.balance_after, 0))
        )
        .order_by(accounts.c.id)
    )
    return [(r.id, int(r.balance), int(r.total), int(r.last_balance)) for r in await conn.execute(stmt)]


async def count_accounts(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(accounts))).scalar_one())


async def insert_account(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(accounts.insert().values(**row))


async def get_account(conn: AsyncConnection, account_id: str) -> Account | None:
    row = (await conn.execute(select(*_ACCOUNT_READ).where(accounts.c.id == account_id))).first()
    return None if row is None else _account(row)


async def get_accounts(conn: AsyncConnection, account_ids: Iterable[str]) -> dict[str, Account]:
    ids = list(set(account_ids))
    if not ids:
        return {}
    rows = await conn.execute(select(*_ACCOUNT_READ).where(one_of(conn, accounts.c.id, ids)))
    return {row.id: _account(row) for row in rows}


async def list_accounts(conn: AsyncConnection, *, limit: int, after: str | None) -> list[Account]:
    stmt = select(*_ACCOUNT_READ).order_by(accounts.c.id).limit(limit)
    if after is not None:
        stmt = stmt.where(accounts.c.id > after)
    return [_account(row) for row in await conn.execute(stmt)]


async def total_by_kind(conn: AsyncConnection, kind: str) -> dict[str, int]:
    stmt = (
        select(ledger_entries.c.account_id, func.sum(ledger_entries.c.amount))
        .where(ledger_entries.c.kind == kind)
        .group_by(ledger_entries.c.account_id)
    )
    return {row[0]: int(row[1]) for row in await conn.execute(stmt)}


async def grants_due_to_expire(conn: AsyncConnection, now: datetime, limit: int) -> list[tuple[int, str]]:
    """(id, account_id) of grants whose expiry has passed and that have no expiry entry yet."""
    grant, done = ledger_entries, ledger_entries.alias("done")
    stmt = (
        select(grant.c.id, grant.c.account_id)
        .select_from(
            grant.outerjoin(
                done,
                (done.c.account_id == grant.c.account_id)
                & (done.c.ref == literal("expiry:") + cast(grant.c.id, String)),
            )
        )
        .where(
            grant.c.expires_at.is_not(None),
            grant.c.expires_at <= now,
            grant.c.kind == "grant",
            done.c.id.is_(None),
        )
        .order_by(grant.c.account_id, grant.c.id)
        .limit(limit)
    )
    return [(int(row.id), row.account_id) for row in await conn.execute(stmt)]


async def all_entries(conn: AsyncConnection, account_id: str) -> list[Entry]:
    """Every entry of one account in ledger order (for the expiry replay)."""
    stmt = (
        select(ledger_entries).where(ledger_entries.c.account_id == account_id).order_by(ledger_entries.c.id)
    )
    return [_entry(row) for row in await conn.execute(stmt)]
