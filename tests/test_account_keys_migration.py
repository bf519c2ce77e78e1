"""Migration 0020_account_keys on SQLite and PostgreSQL with rows in every table it rekeys: the
upgrade keeps them, gives webhook attempts their delivery's account and makes references carry
the account; ids keep counting from where they were; the downgrade keeps the rows too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from creditgate.billing.models import invoices, statement_charges, statements, topup_refunds, topups
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.db.migrate import alembic_config, downgrade, upgrade
from creditgate.db.types import UTCDateTime
from creditgate.ledger.models import ledger_entries
from creditgate.limits.models import holds
from creditgate.notify.models import webhook_endpoints, webhook_events
from tests import support

REVISION = "0020_account_keys"
NOW = datetime(2026, 11, 1, 10, tzinfo=UTC)
REKEYED = (
    "invoices", "topups", "topup_refunds", "statements", "statement_charges", "holds", "ledger_entries",
    "usage_pending", "webhook_events", "webhook_deliveries", "webhook_attempts",
)  # fmt: skip
# the integer-id tables as the revision before knows them (ids from the database)
ENTRIES = sa.table(
    "ledger_entries",
    *(sa.column(n, sa.String) for n in ("account_id", "kind")),
    *(sa.column(n, sa.BigInteger) for n in ("amount", "balance_after")),
    sa.column("created_at", UTCDateTime),
)
PENDING = sa.table(
    "usage_pending",
    *(sa.column(n, sa.String) for n in ("account_id", "provider", "model", "api_key_id")),
    *(sa.column(n, UTCDateTime) for n in ("received_at", "bucket_start")),
    *(
        sa.column(n, sa.BigInteger)
        for n in ("events", "input_tokens", "output_tokens", "cached_tokens", "cost")
    ),
)
DELIVERIES = sa.table(
    "webhook_deliveries",
    *(sa.column(n, sa.String) for n in ("event_id", "endpoint_id", "account_id", "status")),
    sa.column("attempts", sa.Integer),
    sa.column("created_at", UTCDateTime),
)
ATTEMPTS = sa.table(
    "webhook_attempts",
    sa.column("delivery_id", sa.BigInteger),
    *(sa.column(n, sa.String) for n in ("event_id", "endpoint_id")),
    *(sa.column(n, sa.Integer) for n in ("attempt", "duration_ms")),
    sa.column("started_at", UTCDateTime),
    sa.column("succeeded", sa.Boolean),
)


def _run(url: str, work: Any) -> Any:
    async def main() -> Any:
        db = Database(normalize_database_url(url), pool_size=1)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _invoice(invoice_id: str, account: str, number: str) -> dict[str, Any]:
    return {
        "id": invoice_id, "account_id": account, "number": number, "status": "paid", "origin": "manual",
        "currency": "USD", "amount_due": 500, "amount_paid": 500, "attempt_count": 1, "pdf_key": "k",
        "created_at": NOW,
    }  # fmt: skip


def _topup(topup_id: str, account: str, invoice_id: str) -> dict[str, Any]:
    return {
        "id": topup_id, "account_id": account, "invoice_id": invoice_id, "amount": 500, "currency": "USD",
        "origin": "manual", "status": "completed", "customer_id": "c", "payment_method_id": "pm",
        "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip


async def _seed(db: Database, account: str) -> None:
    """One row in every rekeyed table, as the revision before stores them."""
    async with db.write() as conn:
        await conn.execute(
            invoices.insert(), [_invoice("inv_a", account, "A-1"), _invoice("inv_b", account, "A-2")]
        )
        await conn.execute(topups.insert().values(**_topup("top_a", account, "inv_a")))
        await conn.execute(
            topup_refunds.insert().values(
                id="ref_a", account_id=account, topup_id="top_a", amount=100, status="succeeded",
                created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
        await conn.execute(
            statements.insert().values(
                account_id=account, period_start=NOW, period_end=NOW + timedelta(days=30), invoice_id="inv_b",
                mode="postpaid", total=1, late=0, credits=0, due=1, lines=[], created_at=NOW,
            )
        )  # fmt: skip
        await conn.execute(
            statement_charges.insert().values(
                invoice_id="inv_b", ticket=0, account_id=account, payment_method_id="pm", amount=1,
                status="pending", created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
        await conn.execute(
            holds.insert().values(
                id="hold_a", account_id=account, request_id="r", amount=1, status="open", remaining_credit=0,
                created_at=NOW, expires_at=NOW, overrun=0, late=False,
            )
        )  # fmt: skip
        entry = {"account_id": account, "kind": "grant", "amount": 5, "balance_after": 5, "created_at": NOW}
        await conn.execute(ENTRIES.insert(), [entry, entry])
        sums = dict.fromkeys(("events", "input_tokens", "output_tokens", "cached_tokens", "cost"), 1)
        await conn.execute(
            PENDING.insert().values(
                account_id=account,
                provider="p",
                model="m",
                api_key_id="",
                received_at=NOW,
                bucket_start=NOW,
                **sums,
            )
        )
        endpoint = f"we_{account}"
        await conn.execute(
            webhook_endpoints.insert().values(id=endpoint, url="http://x", secret="s", created_at=NOW)
        )
        await conn.execute(
            webhook_events.insert().values(
                id=f"evt_{account}", account_id=account, type="t", body="{}", created_at=NOW
            )
        )
        delivery = {"event_id": f"evt_{account}", "endpoint_id": endpoint, "account_id": account}
        await conn.execute(
            DELIVERIES.insert().values(**delivery, status="failed", attempts=1, created_at=NOW)
        )
        delivery_id = (
            await conn.execute(sa.select(sa.func.max(sa.column("id"))).select_from(DELIVERIES))
        ).scalar()
        await conn.execute(
            ATTEMPTS.insert().values(
                delivery_id=delivery_id, event_id=f"evt_{account}", endpoint_id=endpoint, attempt=1,
                started_at=NOW, duration_ms=1, succeeded=False,
            )
        )  # fmt: skip


async def _counts(db: Database, account: str) -> dict[str, int]:
    """The account's rows per rekeyed table (attempts by their event: they have no account before)."""
    counts = {}
    async with db.read() as conn:
        for table in REKEYED:
            where = "event_id = :e" if table == "webhook_attempts" else "account_id = :a"
            sql = sa.text(f"SELECT count(*) FROM {table} WHERE {where}")
            counts[table] = (await conn.execute(sql, {"a": account, "e": f"evt_{account}"})).scalar_one()
    return counts


def test_upgrade_and_downgrade_keep_every_row(fresh_database_url: str, tmp_path: Path) -> None:
    url = fresh_database_url
    account, other = support.new_account_id(), support.new_account_id()
    for a in (account, other):
        support.cli(url, "accounts", "create", a, data_dir=tmp_path)
    before = ScriptDirectory.from_config(alembic_config()).get_revision(REVISION).down_revision
    assert isinstance(before, str)

    async def step_down_and_seed(db: Database) -> dict[str, int]:
        await downgrade(db, before)
        await _seed(db, account)
        async with db.read() as conn:
            return {
                "ledger": (await conn.execute(sa.text("SELECT max(id) FROM ledger_entries"))).scalar_one(),
                "attempt": (await conn.execute(sa.text("SELECT max(id) FROM webhook_attempts"))).scalar_one(),
            }

    highest = _run(url, step_down_and_seed)
    seeded = _run(url, lambda db: _counts(db, account))
    assert set(seeded.values()) >= {1} and seeded["ledger_entries"] == 2

    async def step_up(db: Database) -> None:
        await upgrade(db)
        async with db.read() as conn:
            attempt_accounts = await conn.execute(
                sa.text("SELECT account_id FROM webhook_attempts WHERE id = :i"), {"i": highest["attempt"]}
            )
            assert attempt_accounts.scalar_one() == account
        async with db.write() as conn:
            # ids count on from the highest stored (the column's default on both backends)
            entry = {
                "account_id": account,
                "kind": "grant",
                "amount": 1,
                "balance_after": 6,
                "created_at": NOW,
            }
            await conn.execute(ledger_entries.insert(), [entry, entry])
            ids = (
                await conn.execute(
                    sa.select(ledger_entries.c.id).order_by(ledger_entries.c.id.desc()).limit(2)
                )
            ).scalars()
            assert sorted(ids) == [highest["ledger"] + 1, highest["ledger"] + 2]
        # a reference carries its account: another account's top-up of this invoice is refused
        with pytest.raises(sa.exc.IntegrityError):
            async with db.write() as conn:
                await conn.execute(topups.insert().values(**_topup("top_x", other, "inv_b")))

    _run(url, step_up)
    after = _run(url, lambda db: _counts(db, account))
    assert after == {**seeded, "ledger_entries": 4}

    _run(url, lambda db: downgrade(db, before))
    assert _run(url, lambda db: _counts(db, account)) == after
    _run(url, upgrade)
    assert _run(url, lambda db: _counts(db, account)) == after
