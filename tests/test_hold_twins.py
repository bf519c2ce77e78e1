"""The hold decision is written twice: in Python (limits/decision.py, what SQLite runs) and in
PL/pgSQL (limits/authorize_many.sql, what PostgreSQL runs). These tests keep the twins equal.

Hypothesis plays the same random sequence of authorize batches, settles, voids, expiries, usage
without a hold, grants, window limit changes, postpaid hard and soft limit changes and clock steps
in three worlds:

- the Python twin on SQLite (production's SQLite path),
- the Python twin on PostgreSQL (same engine as the SQL twin: isolates the rules),
- the SQL function on PostgreSQL (production's PostgreSQL path),

and after every step asserts the same answers (allowed, reason, retry_after_ms, replayed, the
hold's amounts and times) and the same database state per account (balance, held, every hold
row, the window state). The PostgreSQL worlds run each transaction in a session time zone drawn
per example: the function must not depend on it, as the Python rules do not.

A last test checks that the function a migrated database runs is the one in the .sql file.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts import service as accounts
from creditgate.accounts.principal import OPERATOR
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.errors import Conflict, NotFound, ValidationError
from creditgate.ledger import service as ledger
from creditgate.limits import config as limit_config
from creditgate.limits import decision, postgres, postpaid
from creditgate.limits import service as limits
from creditgate.limits.holds import Decision, HoldRequest
from creditgate.limits.models import holds, limit_state
from creditgate.money import UNITS_PER_CENT
from tests import support

CENT = UNITS_PER_CENT
TTL = 600
Authorizer = Callable[[AsyncConnection, list[HoldRequest]], Awaitable[list[Decision | NotFound]]]

# Instants (plus up to 3 h) at the edges the rules care about: daylight-saving changes (US
# 2027-03-14 07:00 and 2027-11-07 06:00 UTC, EU 2027-03-28 and 2027-10-31 01:00 UTC), so that a
# window reaching back a day or more spans one; calendar day / week / month / year ends.
STARTS = [
    datetime(2027, 3, 14, 7, 0, tzinfo=UTC),
    datetime(2027, 11, 7, 6, 0, tzinfo=UTC),
    datetime(2027, 3, 28, 1, 0, tzinfo=UTC),
    datetime(2027, 10, 31, 1, 0, tzinfo=UTC),
    datetime(2027, 1, 3, 23, 58, tzinfo=UTC),
    datetime(2027, 2, 28, 23, 50, tzinfo=UTC),
    datetime(2027, 12, 31, 23, 59, tzinfo=UTC),
]
ZONES = ["America/New_York", "Europe/Berlin", "UTC"]
WAITS = [1, 59, 61, 599, 601, 3600, 6 * 3600, 23 * 3600, 86400, 86400 + 60, 7 * 86400, 30 * 86400]

ACCOUNTS = 3  # account index ACCOUNTS is never created: requests for it are NotFound
account_no = st.integers(0, ACCOUNTS - 1)
request_no = st.integers(0, 5)
# Amounts in cents from few round values, so that sums land exactly on limits and balances
# (where `>` and `>=` part ways), with an odd one now and then.
cents_st = st.one_of(st.sampled_from([0, 1, 5, 10, 20, 30]), st.integers(0, 40))
limit_st = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from([1, 10, 20, 30, 50, 100]),
        st.sampled_from(limit_config.DURATIONS),
        st.sampled_from(limit_config.STRATEGIES),
    ),
)
authorize_st = st.tuples(
    st.just("authorize"),
    st.lists(st.tuples(st.integers(0, ACCOUNTS), request_no, cents_st), min_size=1, max_size=6),
)
ops = st.one_of(
    authorize_st,
    authorize_st,  # twice: authorize is what the twins do
    st.tuples(st.just("settle"), account_no, request_no, cents_st),
    st.tuples(st.just("void"), account_no, request_no),
    st.tuples(st.just("wait"), st.one_of(st.sampled_from(WAITS), st.integers(1, 40 * 86400))),
    st.tuples(st.just("expire"), st.sampled_from([0, 601])),
    st.tuples(st.just("spend"), account_no, st.sampled_from([1, 5, 10, 20])),
    st.tuples(st.just("grant"), account_no, st.sampled_from([1, 10, 30])),
    st.tuples(st.just("limit"), account_no, limit_st),
    # postpaid limits (cents): refused ones (above 0 on a prepaid account, a soft limit above the
    # hard one) are answers too
    st.tuples(st.just("hard"), account_no, st.sampled_from([0, 5, 10, 30])),
    st.tuples(st.just("soft"), account_no, st.sampled_from([0, 1, 5, 10, 30])),
)
account_st = st.tuples(
    st.sampled_from([0, 1, 10, 20, 50, 100]),  # balance, cents
    st.sampled_from(["prepaid", "postpaid"]),
    st.sampled_from([0, 10, 30]),  # hard postpaid limit when postpaid, cents
    st.one_of(st.none(), st.sampled_from([0, 5, 10, 30])),  # soft limit (capped by the hard one)
    limit_st,
)


@dataclass
class World:
    """One implementation on one database, with its own account ids for each example."""

    name: str
    db: Database
    decide: Authorizer
    prefix: str
    zone: str = "UTC"
    ids: list[str] = field(default_factory=list)
    hold_ids: dict[tuple[int, int], str] = field(default_factory=dict)


class Twins:
    def __init__(self, sqlite_url: str, pg_python_url: str, pg_sql_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.dbs = [
            Database(normalize_database_url(u), pool_size=2) for u in (sqlite_url, pg_python_url, pg_sql_url)
        ]
        self.pg = self.dbs[2]
        self.worlds = [
            World("python on sqlite", self.dbs[0], decision.authorize_many, "a"),
            World("python on postgresql", self.dbs[1], decision.authorize_many, "b"),
            World("sql on postgresql", self.dbs[2], postgres.authorize_many, "c"),
        ]

    def run(self, coro: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        for db in self.dbs:
            self.run(db.dispose())
        self.loop.close()


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    support.pg_or_skip()
    path: Path = tmp_path_factory.mktemp("twins")
    sqlite_url = f"sqlite:///{path / 'twins.db'}"
    support.prepare(support.make_settings(sqlite_url, path))
    pg_urls: list[str] = []
    try:
        for _ in range(2):  # one database per world: expiry is database-wide
            pg_urls.append(support.create_pg_database())
            support.prepare(support.make_settings(pg_urls[-1], path))
        t = Twins(sqlite_url, *pg_urls)
        yield t
        t.close()
    finally:
        for url in pg_urls:
            support.drop_pg_database(url)


class Transaction:
    """A write transaction in the world's session time zone (PostgreSQL)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._cm: Any = None

    async def __aenter__(self) -> AsyncConnection:
        self._cm = self.world.db.write()
        conn: AsyncConnection = await self._cm.__aenter__()
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"SET LOCAL TIME ZONE '{self.world.zone}'"))
        return conn

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._cm.__aexit__(*exc)


def _decision_view(result: Decision | NotFound) -> tuple[Any, ...]:
    if isinstance(result, NotFound):
        return ("missing", str(result))
    h = result.hold
    hold = None
    if h is not None:
        hold = (
            h.request_id,
            h.amount,
            h.status,
            h.created_at,
            h.expires_at,
            h.remaining_credit,
            h.remaining_limit,
        )
    return (result.allowed, result.reason, result.retry_after_ms, result.replayed, hold)


async def _setup(world: World, tag: str, setup: list[Any], now: datetime) -> None:
    world.ids = [f"{world.prefix}{tag}{k}" for k in range(ACCOUNTS + 1)]
    world.hold_ids = {}
    async with Transaction(world) as conn:
        for k, (balance, mode, hard, soft, limit) in enumerate(setup):
            account = world.ids[k]
            hard = hard if mode == "postpaid" else 0
            await accounts.create_account(
                conn, account, name=None, mode=mode, now=now, postpaid_limit=hard * CENT
            )
            if soft is not None:
                await postpaid.set_soft_limit(conn, account, min(soft, hard) * CENT)
            if balance:
                await ledger.post(conn, [ledger.Posting(account, "grant", balance * CENT)], now)
            if limit is not None:
                await limit_config.set_limit(
                    conn, account, amount=limit[0] * CENT, duration=limit[1], strategy=limit[2], now=now
                )


async def _step(world: World, op: tuple[Any, ...], now: datetime) -> Any:
    """Apply one step in one world; returns what the caller would see."""
    kind = op[0]
    async with Transaction(world) as conn:
        if kind == "authorize":
            reqs = [
                HoldRequest(world.ids[k], f"r{n}", c * CENT, now, TTL, "m", "p", {"n": n, "k": k})
                for k, n, c in op[1]
            ]
            results = await world.decide(conn, reqs)
            for (k, n, _), result in zip(op[1], results, strict=True):
                if isinstance(result, Decision) and result.hold is not None:
                    world.hold_ids[(k, n)] = result.hold.id
            return [_decision_view(r) for r in results]
        if kind == "settle":
            _, k, n, c = op
            hold_id = world.hold_ids.get((k, n))
            if hold_id is None:
                return None
            (locked,) = await limits.lock_holds_for_settle(conn, [hold_id], [OPERATOR])
            if isinstance(locked, Conflict | NotFound):
                return type(locked).__name__
            if locked.status == "settled":
                return "already settled"
            if c:  # what ingest does for the hold's event: debit, then count it in the windows
                await ledger.post(conn, [ledger.Posting(locked.account_id, "usage", -c * CENT)], now)
                await limits.record_spend(conn, {locked.account_id: c * CENT}, now)
            (closed,) = await limits.finish_settle_many(conn, [(locked, c * CENT, f"e{n}")], now)
            return (closed.status, closed.captured, closed.overrun, closed.late)
        if kind == "void":
            hold_id = world.hold_ids.get((op[1], op[2]))
            if hold_id is None:
                return None
            try:
                return (await limits.void(conn, hold_id, OPERATOR, now)).status
            except Conflict:
                return "Conflict"
        if kind == "expire":  # the count includes earlier examples' holds: not compared
            while await limits.expire(conn, now):
                pass
            return None
        if kind == "spend":  # usage reported without a hold
            account = world.ids[op[1]]
            await ledger.post(conn, [ledger.Posting(account, "usage", -op[2] * CENT)], now)
            await limits.record_spend(conn, {account: op[2] * CENT}, now)
            return None
        if kind == "grant":
            await ledger.post(conn, [ledger.Posting(world.ids[op[1]], "grant", op[2] * CENT)], now)
            return None
        if kind in ("hard", "soft"):
            setter = postpaid.set_hard_limit if kind == "hard" else postpaid.set_soft_limit
            try:
                return (await setter(conn, world.ids[op[1]], op[2] * CENT)).effective
            except ValidationError:
                return "ValidationError"
        if kind == "limit":
            account, limit = world.ids[op[1]], op[2]
            if limit is None:
                return await limit_config.delete_limit(conn, account)
            await limit_config.set_limit(
                conn, account, amount=limit[0] * CENT, duration=limit[1], strategy=limit[2], now=now
            )
            return None
    return None


async def _state(world: World) -> list[Any]:
    """Per account: balance, held, every hold row (but its id), the window state."""
    out: list[Any] = []
    async with Transaction(world) as conn:
        for account in world.ids[:ACCOUNTS]:
            row = await ledger.get_account(conn, account)
            hold_rows = (
                await conn.execute(
                    select(holds).where(holds.c.account_id == account).order_by(holds.c.request_id)
                )
            ).all()
            state = (
                await conn.execute(
                    select(
                        limit_state.c.duration,
                        limit_state.c.strategy,
                        limit_state.c.window_start,
                        limit_state.c.window_spend,
                    ).where(limit_state.c.account_id == account)
                )
            ).first()
            out.append(
                {
                    "balance": int(row.balance),
                    "held": int(row.held),
                    "postpaid": (row.postpaid_hard_limit, row.postpaid_soft_limit),
                    "holds": [
                        tuple(v for k, v in r._mapping.items() if k not in ("id", "account_id"))
                        for r in hold_rows
                    ],
                    "window": None if state is None else tuple(state),
                }
            )
    return out


def _without_ids(seen: Any, world: World) -> Any:
    """Answers mention account ids (NotFound messages); compare them without the world's ids."""
    text_ = repr(seen)
    for k, account in enumerate(world.ids):
        text_ = text_.replace(account, f"<account {k}>")
    return text_


async def _play(twins: Twins, setup: list[Any], steps: list[Any], start: datetime, zone: str) -> None:
    tag = uuid.uuid4().hex[:28]
    for world in twins.worlds:
        world.zone = zone
        await _setup(world, tag, setup, start)
    now = start
    for index, op in enumerate(steps):
        if op[0] == "wait":
            now += timedelta(seconds=op[1])
            continue
        if op[0] == "expire":
            now += timedelta(seconds=op[1])
        seen = []
        for world in twins.worlds:
            answer = await _step(world, op, now)
            seen.append((world.name, _without_ids(answer, world), await _state(world)))
        reference = seen[-1]
        for other in seen[:-1]:
            assert other[1:] == reference[1:], (
                f"step {index} {op} at {now.isoformat()} (session time zone {zone}): "
                f"{other[0]} and {reference[0]} differ:\n{other}\n{reference}"
            )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    setup=st.lists(account_st, min_size=ACCOUNTS, max_size=ACCOUNTS),
    steps=st.lists(ops, min_size=4, max_size=30),
    start=st.sampled_from(STARTS),
    jitter_us=st.integers(0, 3 * 3600 * 10**6),
    zone=st.sampled_from(ZONES),
)
def test_python_and_sql_twins_decide_the_same(
    twins: Twins, setup: list[Any], steps: list[Any], start: datetime, jitter_us: int, zone: str
) -> None:
    twins.run(_play(twins, setup, steps, start + timedelta(microseconds=jitter_us), zone))


def test_sliding_day_is_24_hours_whatever_the_session_time_zone(twins: Twins) -> None:
    """Spend recorded 23.5 h before a request still counts in a daily sliding window, across the
    US daylight-saving change (2027-03-14 07:00 UTC), with the session in New York time; so does
    the retry-after. The 0004 function used '1 day', which is 23 h in New York on that day."""
    funded = (100, "prepaid", 0, None, (30, "daily", "sliding"))
    steps = [
        ("spend", 0, 20),
        ("wait", 23 * 3600 + 1800),
        ("authorize", [(0, 1, 15)]),  # 20 spent + 15 > 30: denied until the 20 leaves
    ]
    twins.run(
        _play(twins, [funded] * ACCOUNTS, steps, datetime(2027, 3, 13, 11, 0, tzinfo=UTC), "America/New_York")
    )


def test_the_migrated_function_is_the_sql_file(twins: Twins) -> None:
    """The function in a database migrated to head is the one in authorize_many.sql. Fails when
    the .sql file changed without a new migration that re-creates the function from it."""

    async def definition(conn: AsyncConnection) -> str:
        return str(
            (
                await conn.execute(text("SELECT pg_get_functiondef('creditgate_authorize_many'::regproc)"))
            ).scalar_one()
        )

    async def main() -> tuple[str, str]:
        async with twins.pg.engine.connect() as conn:
            migrated = await definition(conn)
            await conn.exec_driver_sql(postgres.authorize_many_sql())
            shipped = await definition(conn)
            await conn.rollback()  # leave the migrated function in place
            return migrated, shipped

    migrated, shipped = twins.run(main())
    assert "creditgate_authorize_many" in migrated
    assert migrated == shipped, "authorize_many.sql changed: add a migration that re-creates the function"
