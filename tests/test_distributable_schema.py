"""The rule that keeps the schema distributable by `account_id` (docs/scaling.md: the path to
Citus): every primary key and unique constraint of a per-account table includes the account,
and the ingest, authorize and settle transactions touch only the rows of the accounts they
serve, each statement addressed by account (so a sharded database routes it to the shards of
those accounts, and never has to look across them)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

# import every models module so metadata knows every table
from creditgate.accounts import models as _accounts  # noqa: F401
from creditgate.accounts.principal import OPERATOR
from creditgate.billing import inbox_models as _inbox  # noqa: F401
from creditgate.billing import invoice_models as _invoice  # noqa: F401
from creditgate.billing import models as _billing  # noqa: F401
from creditgate.db import Database, metadata
from creditgate.ledger import models as _ledger  # noqa: F401
from creditgate.limits import models as _limits  # noqa: F401
from creditgate.metering import models as _metering  # noqa: F401
from creditgate.notify import models as _notify  # noqa: F401
from creditgate.workflows import accounts, grants, holds
from creditgate.workflows import authorize as authorizing
from creditgate.workflows import usage as ingest
from tests import support
from tests.cluster_support import usage_event

# Tables not distributed by account, each with the reason (reference tables, or the coordinator's).
GLOBAL_TABLES = {
    "accounts": "the accounts themselves: distributed by their own id (the account id)",
    "tokens": "looked up by the hash of the presented secret, before the account is known",
    "portal_links": "looked up by the hash of the link's secret, before the account is known",
    "portal_sessions": "looked up by the hash of the session cookie, before the account is known",
    "prices": "the price catalog, the same for every account (a reference table)",
    "invoice_counters": "one gapless number series per seller, shared by every account",
    "webhook_endpoints": "the operator's endpoints, not an account's",
    "webhook_inbox": "processor events, deduplicated by the processor's event id before the account is known",
    "upstreams": "the proxy's upstream providers: the operator's configuration (a reference table)",
    "upstream_models": "the proxy's models per upstream: the operator's configuration (a reference table)",
    "id_series": "SQLite's id counters (db/serial.py); empty on PostgreSQL, which uses sequences",
}

PER_ACCOUNT = sorted(t.name for t in metadata.sorted_tables if t.name not in GLOBAL_TABLES)
SHARDED = {*PER_ACCOUNT, "accounts"}  # the tables a statement must address by account


def _keys(table: sa.Table) -> Iterator[tuple[str, tuple[str, ...]]]:
    yield "primary key", tuple(c.name for c in table.primary_key.columns)
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            yield "unique", tuple(c.name for c in constraint.columns)
    for index in table.indexes:
        if index.unique:
            yield "unique", tuple(c.name for c in index.columns)


def test_every_key_of_a_per_account_table_includes_the_account() -> None:
    found = set()
    for name in PER_ACCOUNT:
        table = metadata.tables[name]
        if "account_id" not in table.c:
            found.add((name, "no account_id", ()))
            continue
        for kind, columns in _keys(table):
            if "account_id" not in columns:
                found.add((name, kind, columns))
    assert found == set()


def test_every_global_table_exists_and_says_why() -> None:
    assert set(GLOBAL_TABLES) <= set(metadata.tables)
    assert all(len(reason) > 20 for reason in GLOBAL_TABLES.values())


# -- the statements of the hot transactions --------------------------------------------------

_TABLE = re.compile(r"\b(?:from|into|update|join)\s+\"?(\w+)", re.IGNORECASE)
# SQL functions the hot paths call, and the per-account tables they write (PostgreSQL)
FUNCTIONS = {"creditgate_authorize_many": {"accounts", "holds", "limit_state", "spend_buckets"}}


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


class Statements:
    """Every statement a Database sends, through SQLAlchemy and straight through asyncpg."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[Any]]] = []

    def touched(self) -> Iterator[tuple[str, set[str], list[Any]]]:
        """(sql, the sharded tables it names, flattened parameters)."""
        for sql, params in self.seen:
            tables = {t.lower() for t in _TABLE.findall(sql)} & SHARDED
            for function, writes in FUNCTIONS.items():
                if function in sql:
                    tables |= writes
            if tables:
                yield sql, tables, params


@contextmanager
def recording(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Statements]:
    statements = Statements()

    def on_execute(_conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, _many: bool) -> None:
        statements.seen.append((sql, list(_flatten(params))))

    event.listen(db.engine.sync_engine, "before_cursor_execute", on_execute)
    if not db.is_sqlite:
        import asyncpg

        for method in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
            original = getattr(asyncpg.connection.Connection, method)

            def spy(self: Any, query: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                statements.seen.append((query, list(_flatten(args))))
                return _original(self, query, *args, **kwargs)

            monkeypatch.setattr(asyncpg.connection.Connection, method, spy)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", on_execute)


def _authorize_body(account: str, request_id: str) -> dict[str, Any]:
    return {"account_id": account, "request_id": request_id, "model": "gpt-4o", "estimated_cost_usd": "0.02"}


def test_ingest_authorize_and_settle_address_only_their_accounts(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bystander account with credit, holds and usage never appears in (and is never scanned
    by) the statements serving two other accounts; each statement on a per-account table names
    the accounts it serves (grouped work passes them together, e.g. `account_id = ANY(...)`)."""

    async def main() -> list[tuple[str, set[str], list[Any]]]:
        db = Database(support.make_settings(database_url, Path(".")).database_url, pool_size=4)
        ctx = support.job_context(db)
        a, c, bystander = support.new_account_id(), support.new_account_id(), support.new_account_id()
        try:
            for account in (a, c, bystander):
                await accounts.create_account(ctx, account, name=None, mode="prepaid")
                await grants.apply(ctx, grants.Grant(account_id=account, amount_cents=1000))
            await authorizing.authorize(ctx, _authorize_body(bystander, "b-1"), OPERATOR)
            await ingest.report_usage(ctx, [usage_event(bystander, "b-e")], OPERATOR)
            with recording(db, monkeypatch) as statements:
                decisions = await asyncio.gather(
                    *[
                        authorizing.authorize(ctx, _authorize_body(account, f"r-{account}-{i}"), OPERATOR)
                        for i in range(3)
                        for account in (a, c)
                    ]
                )
                await asyncio.gather(
                    ingest.report_usage(ctx, [usage_event(a, "e-1"), usage_event(c, "e-2")], OPERATOR),
                    ingest.report_usage(ctx, [usage_event(c, "e-3")], OPERATOR),
                )
                hold_ids = [d.hold.id for d in decisions if d.hold is not None]
                await asyncio.gather(
                    *[
                        holds.settle(ctx, hold_id, {"id": f"s-{hold_id}", "cost_usd": "0.01"}, OPERATOR)
                        for hold_id in hold_ids
                    ]
                )
            assert len(hold_ids) == 6
            served = {a, c}
            problems = []
            for sql, tables, params in statements.touched():
                values = {str(v) for v in params if isinstance(v, str)}
                if bystander in values:
                    problems.append(("names the bystander", tables, sql))
                elif not values & served and not (tables == {"holds"} and values & set(hold_ids)):
                    # (a settle finds its hold by the hold id it is given: holds are keyed
                    # (id, account_id), so under Citus that lookup asks every shard's key)
                    problems.append(("not addressed by account", tables, sql))
            assert not problems, "\n".join(f"{why} {sorted(t)}: {sql}" for why, t, sql in problems)
            return list(statements.touched())
        finally:
            await db.dispose()

    touched = asyncio.run(main())
    written = set().union(*(tables for _, tables, _ in touched))
    assert {"holds", "usage_events", "ledger_entries"} <= written  # the recording saw the work
