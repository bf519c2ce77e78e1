"""Admin Idempotency-Keys are per account, as Stripe scopes them, on SQLite and PostgreSQL:
the same key on two accounts names two requests; on one account it replays the same request
and refuses another (409). The migration that scopes the stored keys goes up and down."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.db.migrate import downgrade, upgrade
from creditgate.money import cents
from tests import support


def test_the_same_key_on_two_accounts_is_two_requests(server: support.LiveServer) -> None:
    first, second = support.create_account(server), support.create_account(server)
    grant_key = {"Idempotency-Key": f"monthly-bonus-{uuid.uuid4().hex}"}
    fee_key = {"Idempotency-Key": f"monthly-fee-{uuid.uuid4().hex}"}
    with server.admin() as c:
        for account in (first, second):
            r = c.post(f"/admin/v1/accounts/{account}/grants", json={"amount_cents": 250}, headers=grant_key)
            assert r.status_code == 201, r.text
            assert r.json()["account_id"] == account and "idempotent-replayed" not in r.headers
            r = c.post(
                f"/admin/v1/accounts/{account}/adjustments",
                json={"amount_cents": -50, "reason": "fee"},
                headers=fee_key,
            )
            assert r.status_code == 201, r.text
            assert r.json()["account_id"] == account and "idempotent-replayed" not in r.headers
    assert support.balance_units(server, first) == support.balance_units(server, second) == cents(200)


def test_on_one_account_a_key_replays_the_same_request_and_refuses_another(
    server: support.LiveServer,
) -> None:
    account = support.create_account(server)
    headers = {"Idempotency-Key": f"grant-{uuid.uuid4().hex}"}
    path = f"/admin/v1/accounts/{account}/grants"
    with server.admin() as c:
        first = c.post(path, json={"amount_cents": 300}, headers=headers)
        again = c.post(path, json={"amount_cents": 300}, headers=headers)
        other = c.post(path, json={"amount_cents": 301}, headers=headers)
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert other.status_code == 409, other.text
    assert other.json()["error"]["field"] == "Idempotency-Key"
    assert support.balance_units(server, account) == cents(300)


def test_the_migration_keeps_stored_keys_replaying_and_steps_back(backend: str, tmp_path: Path) -> None:
    """0009_idem_scope moves each stored record to the account its response names; the
    downgrade keeps the oldest record of a key that two accounts share."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'idem.db'}"
    else:
        support.pg_or_skip()
        url = support.create_pg_database()
    insert = text(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response, created_at) "
        "VALUES ('operator', :key, 'h', '201', :response, :at)"
    )
    at = datetime(2030, 1, 1, tzinfo=UTC)

    async def main() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        db = Database(normalize_database_url(url), pool_size=1)
        try:
            await upgrade(db, "0007_merge_heads")
            async with db.write() as conn:
                await conn.execute(insert, {"key": "k1", "response": '{"account_id": "acct-a"}', "at": at})
                await conn.execute(insert, {"key": "k2", "response": "not json", "at": at})
            await upgrade(db, "0009_idem_scope")
            async with db.write() as conn:
                moved = [tuple(r) for r in await conn.execute(text(_ROWS))]
                await conn.execute(
                    text(
                        "INSERT INTO idempotency_keys (account_id, scope, key, request_hash, status_code, "
                        "response, created_at) VALUES ('acct-b', 'operator', 'k1', 'h', '201', '{}', :at)"
                    ),
                    {"at": at + timedelta(seconds=1)},
                )
            await downgrade(db, "0007_merge_heads")
            async with db.read() as conn:
                back = [
                    tuple(r)
                    for r in await conn.execute(
                        text("SELECT key, response FROM idempotency_keys ORDER BY key")
                    )
                ]
            await upgrade(db)
            return moved, back
        finally:
            await db.dispose()

    try:
        moved, back = asyncio.run(main())
    finally:
        if backend == "postgresql":
            support.drop_pg_database(url)
    assert moved == [("acct-a", "k1"), ("", "k2")]
    assert back == [("k1", '{"account_id": "acct-a"}'), ("k2", "not json")]


_ROWS = "SELECT account_id, key FROM idempotency_keys ORDER BY key"
