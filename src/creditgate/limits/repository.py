"""SQL for enforcement. Only limits' own modules import this.

`held` lives on the ledger's accounts row (the ledger never moves it; enforcement does, always
with the account row locked first, so balance, held and the window state move together)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Table, and_, bindparam, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.db.driver import pg_driver
from creditgate.ledger.models import accounts, usage_pending
from creditgate.limits.holds import AnyRow, Hold
from creditgate.limits.models import holds, limit_state, spend_buckets, spending_limits


def _insert(conn: AsyncConnection, table: Table) -> Any:  # the dialect's Insert (both upsert)
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def _pg(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def lock_account(conn: AsyncConnection, account_id: str) -> AnyRow | None:
    """Lock the account row (PostgreSQL FOR UPDATE; SQLite's writer already holds the database)
    and read what enforcement needs. Every reader of window state runs after this lock."""
    stmt = select(
        accounts.c.balance, accounts.c.held, accounts.c.postpaid_hard_limit, accounts.c.postpaid_soft_limit
    ).where(accounts.c.id == account_id)
    if _pg(conn):
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def pending_usage(conn: AsyncConnection, account_id: str, since: datetime | None) -> tuple[int, int]:
    """The account's usage stored but not applied yet (ledger.models.usage_pending): its whole
    cost, and the part stored at or after `since` (0 when None), which the spend buckets will
    count in a window starting at `since`. Read after the account lock."""
    cost = usage_pending.c.cost
    recent = literal(0) if since is None else func.sum(cost).filter(usage_pending.c.received_at >= since)
    stmt = select(func.coalesce(func.sum(cost), 0), func.coalesce(recent, 0))
    row = (await conn.execute(stmt.where(usage_pending.c.account_id == account_id))).one()
    return int(row[0]), int(row[1])


_POSTPAID_LIMITS = select(
    accounts.c.mode, accounts.c.postpaid_hard_limit, accounts.c.postpaid_soft_limit
).where(accounts.c.id == bindparam("aid"))


async def postpaid_limits(conn: AsyncConnection, account_id: str) -> AnyRow | None:
    """The account's mode and postpaid limits (a plain read)."""
    return (await conn.execute(_POSTPAID_LIMITS, {"aid": account_id})).first()


async def lock_postpaid_limits(conn: AsyncConnection, account_id: str) -> AnyRow | None:
    """The account's mode and postpaid limits, its row locked as authorize locks it."""
    stmt = _POSTPAID_LIMITS.with_for_update() if _pg(conn) else _POSTPAID_LIMITS
    return (await conn.execute(stmt, {"aid": account_id})).first()


async def put_postpaid_limits(conn: AsyncConnection, account_id: str, *, hard: int, soft: int | None) -> None:
    await conn.execute(
        accounts.update()
        .where(accounts.c.id == account_id)
        .values(postpaid_hard_limit=hard, postpaid_soft_limit=soft)
    )


async def hold_by_request(conn: AsyncConnection, account_id: str, request_id: str) -> AnyRow | None:
    stmt = select(holds).where(holds.c.account_id == account_id, holds.c.request_id == request_id)
    return (await conn.execute(stmt)).first()


async def limit_with_state(conn: AsyncConnection, account_id: str) -> AnyRow | None:
    """The account's limit joined with its window state (state columns None when absent)."""
    stmt = (
        select(
            spending_limits.c.amount,
            spending_limits.c.duration,
            spending_limits.c.strategy,
            limit_state.c.duration.label("state_duration"),
            limit_state.c.strategy.label("state_strategy"),
            limit_state.c.window_start,
            limit_state.c.window_spend,
        )
        .select_from(
            spending_limits.outerjoin(limit_state, limit_state.c.account_id == spending_limits.c.account_id)
        )
        .where(spending_limits.c.account_id == account_id)
    )
    return (await conn.execute(stmt)).first()


async def sum_buckets(
    conn: AsyncConnection, account_id: str, start: datetime, end: datetime | None = None
) -> int:
    cond = [spend_buckets.c.account_id == account_id, spend_buckets.c.bucket_start >= start]
    if end is not None:
        cond.append(spend_buckets.c.bucket_start < end)
    stmt = select(func.coalesce(func.sum(spend_buckets.c.amount), 0)).where(and_(*cond))
    return int((await conn.execute(stmt)).scalar_one())


async def put_state(
    conn: AsyncConnection, account_id: str, duration: str, strategy: str, start: datetime, spend: int
) -> None:
    values = {"duration": duration, "strategy": strategy, "window_start": start, "window_spend": spend}
    stmt = _insert(conn, limit_state).values(account_id=account_id, **values)
    stmt = stmt.on_conflict_do_update(index_elements=["account_id"], set_=values)
    await conn.execute(stmt)


async def insert_hold(conn: AsyncConnection, hold: Hold, metadata: dict[str, Any] | None) -> None:
    await conn.execute(holds.insert().values(**asdict(hold), metadata=metadata))


_ADD_HELD = (
    accounts.update()
    .where(accounts.c.id == bindparam("aid"))
    .values(held=accounts.c.held + bindparam("delta"))
)


# PostgreSQL: one statement for any number of accounts; the rows are locked in id order first
# (the LockRows over the sort), as every writer of accounts locks them, so no deadlock.
_PG_ADD_HELD = (
    "WITH d AS (SELECT * FROM unnest($1::varchar[], $2::bigint[]) AS d(id, delta)), "
    "l AS (SELECT a.id FROM accounts a WHERE a.id = ANY($1::varchar[]) ORDER BY a.id FOR NO KEY UPDATE) "
    "UPDATE accounts SET held = accounts.held + d.delta FROM d JOIN l ON l.id = d.id "
    "WHERE accounts.id = d.id"
)


async def add_held_many(conn: AsyncConnection, deltas: dict[str, int]) -> None:
    """Move several accounts' held in one statement, in id order (callers hold the locks)."""
    ids = [a for a in sorted(deltas) if deltas[a]]
    if not ids:
        return
    if _pg(conn):
        await (await pg_driver(conn)).execute(_PG_ADD_HELD, ids, [deltas[a] for a in ids])
        return
    await conn.execute(_ADD_HELD, [{"aid": a, "delta": deltas[a]} for a in ids])


async def add_held(conn: AsyncConnection, account_id: str, delta: int) -> None:
    await conn.execute(
        accounts.update().where(accounts.c.id == account_id).values(held=accounts.c.held + delta)
    )


async def get_hold(conn: AsyncConnection, hold_id: str, *, lock: bool = False) -> AnyRow | None:
    stmt = select(holds).where(holds.c.id == hold_id)
    if lock and _pg(conn):
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


_HOLD_FIELDS = tuple(Hold.__dataclass_fields__)
# One prepared statement for any number of holds (asyncpg returns aware UTC datetimes).
_PG_LOCK_HOLDS = (
    f"SELECT {', '.join(_HOLD_FIELDS)} FROM holds WHERE id = ANY($1::varchar[]) ORDER BY id FOR UPDATE"
)


async def lock_holds(conn: AsyncConnection, hold_ids: list[str]) -> list[Hold]:
    """Lock holds in id order (so concurrent batches never deadlock) and read them."""
    ids = sorted(set(hold_ids))
    if _pg(conn):
        rows = await (await pg_driver(conn)).fetch(_PG_LOCK_HOLDS, ids)
        return [Hold(**dict(zip(_HOLD_FIELDS, row, strict=True))) for row in rows]
    stmt = select(holds).where(holds.c.id.in_(ids)).order_by(holds.c.id)
    return [Hold.from_row(row) for row in await conn.execute(stmt)]


_CLOSE = (
    holds.update()
    .where(holds.c.id == bindparam("hid"), holds.c.account_id == bindparam("aid"))
    .values(
        status=bindparam("status"),
        captured=bindparam("captured"),
        overrun=bindparam("overrun"),
        late=bindparam("late"),
        event_id=bindparam("event_id"),
        closed_at=bindparam("closed_at"),
    )
)


# Closing the holds and releasing what they held in one statement (one round trip): the holds
# are locked already (lock_holds), the accounts are locked here in id order, as every writer
# of accounts locks them. The UPDATE of holds in the WITH runs to completion whether or not
# the rest reads it (PostgreSQL's rule for data-modifying WITH queries).
_PG_CLOSE = (
    "WITH c AS (UPDATE holds SET status = d.status, captured = d.captured, overrun = d.overrun, "
    "late = d.late, event_id = d.event_id, closed_at = d.closed_at FROM unnest($1::varchar[], "
    "$2::varchar[], $3::varchar[], $4::bigint[], $5::bigint[], $6::boolean[], $7::varchar[], "
    "$8::timestamptz[]) AS d(hid, aid, status, captured, overrun, late, event_id, closed_at) "
    "WHERE holds.id = d.hid AND holds.account_id = d.aid), "
    "r AS (SELECT * FROM unnest($9::varchar[], $10::bigint[]) AS r(id, delta)), "
    "l AS (SELECT a.id FROM accounts a WHERE a.id = ANY($9::varchar[]) ORDER BY a.id FOR NO KEY UPDATE) "
    "UPDATE accounts SET held = accounts.held + r.delta FROM r JOIN l ON l.id = r.id "
    "WHERE accounts.id = r.id"
)
_CLOSE_COLUMNS = ("hid", "aid", "status", "captured", "overrun", "late", "event_id", "closed_at")


async def close_holds(conn: AsyncConnection, rows: list[dict[str, Any]], released: dict[str, int]) -> None:
    """Mark holds settled (rows: hid, aid (its account), status, captured, overrun, late,
    event_id, closed_at) and take what they held off their accounts' `held` (`released`, by
    account); the holds are locked already (lock_holds). PostgreSQL: one statement."""
    if not rows:
        return
    ids = [a for a in sorted(released) if released[a]]
    if _pg(conn):
        columns = [[row[name] for row in rows] for name in _CLOSE_COLUMNS]
        await (await pg_driver(conn)).execute(_PG_CLOSE, *columns, ids, [-released[a] for a in ids])
        return
    await add_held_many(conn, {a: -released[a] for a in ids})
    await conn.execute(_CLOSE, rows)


async def update_hold(conn: AsyncConnection, hold_id: str, account_id: str, values: dict[str, Any]) -> None:
    stmt = holds.update().where(holds.c.id == hold_id, holds.c.account_id == account_id)
    await conn.execute(stmt.values(**values))


async def lock_expired(conn: AsyncConnection, now: datetime, limit: int) -> list[AnyRow]:
    """Open holds past their expiry, locked; rows another runner holds are skipped."""
    stmt = (
        select(holds.c.id, holds.c.account_id, holds.c.amount)
        .where(holds.c.status == "open", holds.c.expires_at <= now)
        .order_by(holds.c.expires_at)
        .limit(limit)
    )
    if _pg(conn):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(await conn.execute(stmt))


async def mark_expired(conn: AsyncConnection, hold_ids: list[str], now: datetime) -> None:
    await conn.execute(
        holds.update()
        .where(holds.c.id.in_(hold_ids), holds.c.status == "open")
        .values(status="expired", closed_at=now)
    )


_SPEND_SQL: dict[str, tuple[Any, Any]] = {}


def _spend_statements(conn: AsyncConnection) -> tuple[Any, Any]:
    """The bucket upsert and running-sum update, built once per dialect (they run on every
    ingest batch and settle)."""
    name = conn.dialect.name
    if name not in _SPEND_SQL:
        upsert = _insert(conn, spend_buckets)
        upsert = upsert.on_conflict_do_update(
            index_elements=["account_id", "bucket_start"],
            set_={"amount": spend_buckets.c.amount + upsert.excluded.amount},
        )
        bump = (
            limit_state.update()
            .where(
                limit_state.c.account_id == bindparam("a"),
                limit_state.c.window_start <= bindparam("bucket"),
            )
            .values(window_spend=limit_state.c.window_spend + bindparam("x"))
        )
        _SPEND_SQL[name] = (upsert, bump)
    return _SPEND_SQL[name]


# Both writes of add_spend in one statement over arrays: it runs in every ingest transaction,
# where the two statements as per-row executemanys were a measurable part of ingest (see bench/).
_PG_ADD_SPEND = (
    "WITH s AS (SELECT * FROM unnest($1::varchar[], $2::bigint[]) AS s(a, x)), "
    "b AS (INSERT INTO spend_buckets (account_id, bucket_start, amount) "
    "SELECT a, $3::timestamptz, x FROM s ORDER BY a "
    "ON CONFLICT (account_id, bucket_start) DO UPDATE SET amount = spend_buckets.amount + excluded.amount) "
    "UPDATE limit_state l SET window_spend = l.window_spend + s.x FROM s "
    "WHERE l.account_id = s.a AND l.window_start <= $3::timestamptz"
)


async def add_spend(conn: AsyncConnection, spent: dict[str, int], bucket: datetime) -> None:
    """Add spend to each account's bucket and to its running window sum (when the bucket is in
    the window the sum covers). Callers hold the accounts' row locks."""
    ids = sorted(a for a, amount in spent.items() if amount > 0)
    if not ids:
        return
    if conn.dialect.name == "postgresql":
        driver = await pg_driver(conn)
        await driver.execute(_PG_ADD_SPEND, ids, [spent[a] for a in ids], bucket.astimezone(UTC))
        return
    upsert, bump = _spend_statements(conn)
    await conn.execute(upsert, [{"account_id": a, "bucket_start": bucket, "amount": spent[a]} for a in ids])
    await conn.execute(bump, [{"a": a, "bucket": bucket, "x": spent[a]} for a in ids])


async def first_bucket_reaching(
    conn: AsyncConnection, account_id: str, start: datetime, need: int
) -> datetime | None:
    """The earliest bucket (from `start`) at which the running total of spend reaches `need`."""
    running = func.sum(spend_buckets.c.amount).over(order_by=spend_buckets.c.bucket_start)
    inner = (
        select(spend_buckets.c.bucket_start, running.label("total"))
        .where(spend_buckets.c.account_id == account_id, spend_buckets.c.bucket_start >= start)
        .subquery()
    )
    stmt = select(inner.c.bucket_start).where(inner.c.total >= need).order_by(inner.c.bucket_start).limit(1)
    return (await conn.execute(stmt)).scalar()


async def earliest_open_expiry(conn: AsyncConnection, account_id: str) -> datetime | None:
    stmt = select(func.min(holds.c.expires_at)).where(
        holds.c.account_id == account_id, holds.c.status == "open"
    )
    expiry: datetime | None = (await conn.execute(stmt)).scalar()
    return expiry


async def prune_buckets(conn: AsyncConnection, before: datetime) -> int:
    result = await conn.execute(spend_buckets.delete().where(spend_buckets.c.bucket_start < before))
    return int(result.rowcount)


async def hold_totals(conn: AsyncConnection, account_id: str) -> tuple[int, int]:
    """(sum of open hold amounts, sum of recorded overruns) for one account."""
    open_sum = func.coalesce(func.sum(holds.c.amount).filter(holds.c.status == "open"), 0)
    stmt = select(open_sum, func.coalesce(func.sum(holds.c.overrun), 0)).where(
        holds.c.account_id == account_id
    )
    row = (await conn.execute(stmt)).one()
    return int(row[0]), int(row[1])


_PG_AUTHORIZE_MANY = (
    "SELECT * FROM creditgate_authorize_many($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], "
    "$5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::text[])"
)


async def pg_authorize_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[Any]:
    """Many authorize decisions in one statement (in autocommit mode from `Database.single()`),
    locking accounts in id order; sent through the driver (SQLAlchemy's statement path cost
    ~0.25 ms per call). Each result record carries `o_index`, the 1-based position of its
    request, and the function's other `o_` columns, by name."""
    columns = ("account_id", "request_id", "amount", "created_at", "expires_at", "id", "model", "provider")
    args: list[Any] = [[r[c] for r in rows] for c in columns]
    args.append([None if r["metadata"] is None else orjson.dumps(r["metadata"]).decode() for r in rows])
    return list(await (await pg_driver(conn)).fetch(_PG_AUTHORIZE_MANY, *args))


async def held_mismatches(conn: AsyncConnection) -> list[AnyRow]:
    """Accounts whose `held` is not the sum of their open holds: (id, held, open_sum) rows."""
    open_holds = (
        select(holds.c.account_id, func.sum(holds.c.amount).label("total"))
        .where(holds.c.status == "open")
        .group_by(holds.c.account_id)
        .subquery()
    )
    open_sum = func.coalesce(open_holds.c.total, 0)
    stmt = (
        select(accounts.c.id, accounts.c.held, open_sum.label("open_sum"))
        .select_from(accounts.outerjoin(open_holds, open_holds.c.account_id == accounts.c.id))
        .where(accounts.c.held != open_sum)
        .order_by(accounts.c.id)
    )
    return list(await conn.execute(stmt))
