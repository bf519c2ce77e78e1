"""Hypothesis: random sequences of ledger operations (grants with and without expiry, top-ups,
usage batches with duplicates, adjustments, refunds, clock moves, the expiry job), run
sequentially against an exact model, and concurrently (several connections at once on the
same accounts: real parallel transactions on PostgreSQL). After every step:

* cached balance == sum of entries == last running balance, for every account;
* usage debits == sum of stored event costs, and `billing.reconcile.reconcile_report` is ok;
* balances and stored events match the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from creditgate import jobs
from creditgate.accounts.principal import OPERATOR
from creditgate.billing.reconcile import reconcile_report
from creditgate.clock import ManualClock
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.ledger import service as ledger
from creditgate.ledger.expiry import unused_remainders
from creditgate.ledger.service import Posting
from creditgate.metering import service as metering
from creditgate.metering.catalog import PriceCatalog
from creditgate.money import cents, parse_usd, to_usd_string, usage_cost
from tests import support

START = datetime(2026, 6, 1, tzinfo=UTC)
N_ACCOUNTS = 2
GPT4O = (parse_usd("2.50"), parse_usd("10.00"), parse_usd("1.25"), 0)  # the default catalog's row
_NEVER = datetime.max.replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def prop_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of its own, so each step's whole-database reconcile stays small."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("props") / "props.db"
        url = f"sqlite:///{path}"
        support.prepare(support.make_settings(url, path.parent))
        yield url
        return
    support.pg_or_skip()
    url = support.create_pg_database()
    try:
        support.prepare(support.make_settings(url, Path(tmp_path_factory.mktemp("props"))))
        yield url
    finally:
        support.drop_pg_database(url)


# ---- operations ---------------------------------------------------------------------------

acct = st.integers(0, N_ACCOUNTS - 1)
signed_cents = st.integers(-3000, 3000).filter(bool)
event = st.tuples(
    acct,
    st.integers(0, 25),  # event number: small, so ids repeat (duplicates)
    st.integers(0, 2),  # content variant: a repeated id may come with different content
)
GRANT = st.tuples(st.just("grant"), acct, st.integers(1, 5000), st.one_of(st.none(), st.integers(1, 96)))
OPS = st.one_of(  # weighted towards what makes expiry interesting: grants and spend
    GRANT,
    GRANT,
    st.tuples(st.just("adjustment"), acct, st.integers(-3000, -1), st.none()),
    st.tuples(st.just("topup"), acct, st.integers(1, 5000), st.one_of(st.none(), st.integers(0, 3))),
    st.tuples(st.just("adjustment"), acct, signed_cents, st.none()),
    st.tuples(st.just("refund"), acct, signed_cents, st.one_of(st.none(), st.integers(0, 3))),
    st.tuples(st.just("usage"), st.lists(event, min_size=1, max_size=12)),
    st.tuples(st.just("advance"), st.integers(1, 60)),
    st.tuples(st.just("expire")),
)


def _event_body(account: str, number: int, variant: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"ev{number}",
        "account_id": account,
        "model": "gpt-4o",
        "provider": "openai",
    }
    if (number + variant) % 3 == 0:  # a gateway-supplied exact cost
        body.update(input_tokens=1, output_tokens=1, cost_usd=to_usd_string(number * 1_234_567 + variant * 7))
    else:  # priced from the catalog
        body.update(
            input_tokens=100 * number + variant, output_tokens=17 * number, cached_tokens=number * variant
        )
    return body


def _event_cost(body: dict[str, Any]) -> int:
    if "cost_usd" in body:
        return parse_usd(body["cost_usd"])
    return usage_cost(body["input_tokens"], body["output_tokens"], body.get("cached_tokens", 0), *GPT4O)


# ---- the model ----------------------------------------------------------------------------


@dataclass
class Lot:
    order: int
    remaining: int
    expires_at: datetime | None
    grant_id: int | None = None


@dataclass
class Model:
    """What the books must say, computed online as operations happen."""

    balance: dict[str, int] = field(default_factory=dict)
    events: dict[str, dict[str, int]] = field(default_factory=dict)  # account -> event id -> cost
    refs: set[tuple[str, str]] = field(default_factory=set)
    lots: dict[str, list[Lot]] = field(default_factory=dict)
    debt: dict[str, int] = field(default_factory=dict)
    due: dict[int, tuple[str, int]] = field(default_factory=dict)  # grant id -> (account, remainder)
    expired: set[int] = field(default_factory=set)
    counter: int = 0

    def open(self, account: str) -> None:
        self.balance[account], self.events[account], self.lots[account], self.debt[account] = 0, {}, [], 0

    def tick(self, now: datetime) -> None:
        for account, lots in self.lots.items():
            for lot in [lot for lot in lots if lot.expires_at is not None and lot.expires_at <= now]:
                lots.remove(lot)
                assert lot.grant_id is not None
                self.due[lot.grant_id] = (account, lot.remaining)

    def move(
        self, account: str, amount: int, expires_at: datetime | None = None, grant_id: int | None = None
    ) -> None:
        self.balance[account] += amount
        if amount > 0:
            paid = min(self.debt[account], amount)
            self.debt[account] -= paid
            self.counter += 1
            self.lots[account].append(Lot(self.counter, amount - paid, expires_at, grant_id))
        else:
            need = -amount
            for lot in sorted(self.lots[account], key=lambda x: (x.expires_at or _NEVER, x.order)):
                take = min(lot.remaining, need)
                lot.remaining -= take
                need -= take
            self.debt[account] += need


# ---- running operations -------------------------------------------------------------------


@dataclass
class World:
    db: Database
    clock: ManualClock
    accounts: list[str]
    catalog: PriceCatalog = field(default_factory=PriceCatalog)


async def _post(world: World, posting: Posting) -> tuple[bool, int]:
    async with world.db.write() as conn:
        (new,) = (await ledger.post(conn, [posting], world.clock())).applied
        last = (await ledger.list_entries(conn, posting.account_id, limit=1))[0]
    return new, int(last.id)


async def _apply(world: World, op: tuple[Any, ...], model: Model | None) -> Any:
    """Run one operation; update the model when one is given (sequential mode)."""
    kind, now = op[0], world.clock()
    if model is not None:
        model.tick(now)
    if kind in ("grant", "topup", "adjustment", "refund"):
        account = world.accounts[op[1]]
        amount = cents(op[2])
        expires = now + timedelta(hours=op[3]) if kind == "grant" and op[3] is not None else None
        ref = f"{kind}:{op[3]}" if kind in ("topup", "refund") and op[3] is not None else None
        # a bare "topup" posting with no invoice is not a real top-up (billing's reconcile would
        # rightly flag it), so paid-in credit with a ref is modelled as a positive adjustment
        posted = "adjustment" if kind == "topup" else kind
        new, entry_id = await _post(world, Posting(account, posted, amount, ref=ref, expires_at=expires))
        if model is not None:
            assert new == ((account, ref) not in model.refs if ref else True)
            if new:
                model.move(account, amount, expires, entry_id if expires else None)
                if ref:
                    model.refs.add((account, ref))
        return new
    if kind == "usage":
        bodies = [_event_body(world.accounts[a], n, v) for a, n, v in op[1]]
        async with world.db.write() as conn:
            result = await metering.ingest(conn, bodies, OPERATOR, world.catalog, now)
        assert not result.rejected
        if model is not None:
            debits: dict[str, int] = {}
            new = 0
            for body in bodies:
                stored = model.events[body["account_id"]]
                if body["id"] not in stored:
                    stored[body["id"]] = _event_cost(body)
                    debits[body["account_id"]] = debits.get(body["account_id"], 0) + stored[body["id"]]
                    new += 1
            assert (result.accepted, result.duplicates) == (new, len(bodies) - new)
            for account in sorted(debits):
                if debits[account]:
                    model.move(account, -debits[account])
        return result
    if kind == "advance":
        world.clock.advance(hours=op[1])
        return None
    if kind == "expire":
        posted = await jobs.expire_grants(world.db, world.clock)
        if model is not None:
            fresh = {gid: v for gid, v in model.due.items() if gid not in model.expired}
            assert posted == len(fresh)
            for gid, (account, remainder) in fresh.items():
                model.balance[account] -= remainder
                model.expired.add(gid)
        return posted
    raise AssertionError(kind)


async def _check(world: World, model: Model | None, base: dict[str, int] | None = None) -> None:
    async with world.db.read() as conn:
        report = await reconcile_report(conn)
        checked, mismatches = await ledger.reconcile(conn)
        rows = await ledger.get_accounts(conn, world.accounts)
        stored = await conn.execute(
            text("SELECT account_id, count(*), coalesce(sum(cost), 0) FROM usage_events GROUP BY account_id")
        )
        per_account = {r[0]: (int(r[1]), int(r[2])) for r in stored}
    assert report["ok"], report
    assert mismatches == [] and checked >= len(world.accounts)
    if model is not None:
        for account in world.accounts:
            assert rows[account].balance == model.balance[account]
            expected = model.events[account]
            assert per_account.get(account, (0, 0)) == (len(expected), sum(expected.values()))


def _run(url: str, body: Any) -> None:
    async def main() -> None:
        db = Database(normalize_database_url(url), pool_size=8)
        try:
            await body(db)
        finally:
            await db.dispose()

    asyncio.run(main())


async def _world(db: Database, model: Model | None) -> World:
    world = World(db, ManualClock(START), [support.new_account_id() for _ in range(N_ACCOUNTS)])
    async with db.write() as conn:
        for account in world.accounts:
            await ledger.open_account(conn, account, name="p", mode="prepaid", now=world.clock())
            if model is not None:
                model.open(account)
    return world


@settings(max_examples=75, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(OPS, min_size=1, max_size=14))
@example(
    ops=[
        ("topup", 0, 1000, None),
        ("grant", 0, 500, 48),
        ("grant", 0, 500, 2),
        ("adjustment", 0, -700, None),
        ("usage", [(0, 1, 0), (0, 1, 1), (1, 2, 0)]),
        ("advance", 5),
        ("expire",),
        ("advance", 50),
    ]
)
def test_sequential_operations_match_the_model(prop_url: str, ops: list[tuple[Any, ...]]) -> None:
    async def body(db: Database) -> None:
        model = Model()
        world = await _world(db, model)
        for op in ops:
            await _apply(world, op, model)
            await _check(world, model)
        # finally expire everything that is left, and check the books once more
        world.clock.advance(days=30)
        await _apply(world, ("expire",), model)
        await _check(world, model)
        assert all(not lots or all(lot.expires_at is None for lot in lots) for lots in model.lots.values())

    _run(prop_url, body)


CONCURRENT_OPS = st.lists(st.one_of(OPS, OPS.filter(lambda o: o[0] == "usage")), min_size=2, max_size=6)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(groups=st.lists(CONCURRENT_OPS, min_size=1, max_size=5))
def test_concurrent_operations_keep_the_books(prop_url: str, groups: list[list[tuple[Any, ...]]]) -> None:
    """Each group runs at once, every operation in its own transaction and connection. The
    order inside a group is up to the database, so the check is on order-free facts."""

    async def body(db: Database) -> None:
        other = Database(db.url, pool_size=8)  # a second process's pool: a second job runner
        try:
            world = await _world(db, None)
            second = World(other, world.clock, world.accounts, PriceCatalog())
            moved = {a: 0 for a in world.accounts}
            events: dict[str, dict[str, int]] = {a: {} for a in world.accounts}
            refs: set[tuple[str, str]] = set()
            for group in groups:
                ops = [op for op in group if op[0] != "advance"]
                results = await asyncio.gather(
                    *[_apply(second if i % 2 else world, op, None) for i, op in enumerate(ops)]
                )
                for op, result in zip(ops, results, strict=True):
                    if op[0] in ("grant", "topup", "adjustment", "refund"):
                        account = world.accounts[op[1]]
                        ref = (
                            f"{op[0]}:{op[3]}" if op[0] in ("topup", "refund") and op[3] is not None else None
                        )
                        if ref is None or (account, ref) not in refs:
                            moved[account] += cents(op[2])
                        if ref:
                            refs.add((account, ref))
                    elif op[0] == "usage":
                        for a, n, v in op[1]:
                            b = _event_body(world.accounts[a], n, v)
                            events[b["account_id"]].setdefault(b["id"], -1)
                for op in group:
                    if op[0] == "advance":
                        world.clock.advance(hours=op[1])
                await _check(world, None)
            world.clock.advance(days=30)
            await asyncio.gather(jobs.expire_grants(db, world.clock), jobs.expire_grants(other, world.clock))
            await _check(world, None)
            async with db.read() as conn:
                for account in world.accounts:
                    entries = list(reversed(await ledger.list_entries(conn, account, limit=10_000)))
                    grants = [e for e in entries if e.kind == "grant" and e.expires_at is not None]
                    expiries = {e.ref: e.amount for e in entries if e.kind == "expiry"}
                    # every expiring grant expired exactly once, by what the ledger says was unused
                    assert sorted(expiries) == sorted(f"expiry:{g.id}" for g in grants)
                    replay = unused_remainders(entries, [g.id for g in grants])
                    for g in grants:
                        assert 0 <= -expiries[f"expiry:{g.id}"] <= g.amount
                        assert -expiries[f"expiry:{g.id}"] == replay[g.id]
                    # stored events: each id once; the balance moved by exactly what happened
                    ids = (
                        await conn.execute(
                            text("SELECT event_id, cost FROM usage_events WHERE account_id = :a"),
                            {"a": account},
                        )
                    ).all()
                    assert sorted(r[0] for r in ids) == sorted(events[account])
                    usage = sum(int(r[1]) for r in ids)
                    balance = (await ledger.get_account(conn, account)).balance
                    assert balance == moved[account] - usage + sum(expiries.values())
        finally:
            await other.dispose()

    _run(prop_url, body)


def test_hot_account_under_many_connections(prop_url: str) -> None:
    """Many concurrent transactions on one account and on overlapping pairs: no deadlock, no
    lost update, every replayed batch charged once."""

    async def body(db: Database) -> None:
        world = await _world(db, None)
        a, b = world.accounts
        batches = [
            [_event_body(x, n, 0) for x in (a, b)[(i % 2) :] for n in range(i, i + 5)] for i in range(12)
        ]
        catalog = PriceCatalog()

        async def ingest(events: list[dict[str, Any]]) -> None:
            async with db.write() as conn:
                await metering.ingest(conn, events, OPERATOR, catalog, world.clock())

        async def grant(account: str) -> None:
            async with db.write() as conn:
                await ledger.post(conn, [Posting(account, "grant", cents(7))], world.clock())

        tasks = [ingest(batch) for batch in batches for _ in range(2)] + [grant(x) for x in (a, b) * 4]
        await asyncio.gather(*tasks)
        await _check(world, None)
        expected: dict[str, dict[str, int]] = {x: {} for x in world.accounts}
        for batch in batches:
            for e in batch:
                expected[e["account_id"]][e["id"]] = _event_cost(e)
        async with db.read() as conn:
            for x in world.accounts:
                balance = (await ledger.get_account(conn, x)).balance
                assert balance == 4 * cents(7) - sum(expected[x].values())

    _run(prop_url, body)
