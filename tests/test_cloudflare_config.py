"""topup/config and spending-limit get/set/delete through the official SDK."""

from __future__ import annotations

import warnings
from pathlib import Path

import cloudflare
import pytest

from creditgate.money import cents
from tests import support
from tests.cloudflare_support import billing, clocked_server, sdk, sql_scalar

NULL_CONFIG = {"amount": None, "threshold": None, "disabledReason": None, "error": None, "lastFailedAt": None}


def _raw(response: object) -> dict[str, object]:
    body = response.http_response.json()  # type: ignore[attr-defined]
    assert isinstance(body, dict) and body["success"] is True
    return body


def test_topup_config_round_trip(server: support.LiveServer) -> None:
    account = support.create_account(server)
    b = billing(server, support.create_token(server, account, "write"))
    assert _raw(b.topup.config.with_raw_response.get(account_id=account))["result"] == NULL_CONFIG
    created = b.topup.config.create(account_id=account, amount=5000, threshold=500)
    assert (created.amount, created.threshold) == (5000, 500)
    assert _raw(b.topup.config.with_raw_response.get(account_id=account))["result"] == {
        **NULL_CONFIG,
        "amount": 5000,
        "threshold": 500,
    }
    balance = b.credit_balance(account_id=account).topup_config
    assert (balance.amount, balance.threshold, balance.disabled_reason, balance.last_failed_at) == (
        5000,
        500,
        None,
        None,
    )
    b.topup.config.create(account_id=account, amount=2500, threshold=1000)
    assert b.topup.config.get(account_id=account).amount == 2500
    assert _raw(b.topup.config.with_raw_response.delete(account_id=account))["result"] == {}
    assert b.topup.config.delete(account_id=account) == {}  # deleting again is fine
    assert _raw(b.topup.config.with_raw_response.get(account_id=account))["result"] == NULL_CONFIG


def test_topup_config_error_state_is_returned_in_camel_case(
    server: support.LiveServer, database_url: str
) -> None:
    """The later auto top-up job records failures in the same row; the wire shows them."""
    account = support.create_account(server)
    b = billing(server, support.create_token(server, account, "write"))
    b.topup.config.create(account_id=account, amount=5000, threshold=500)
    import asyncio
    from datetime import UTC, datetime

    from sqlalchemy import update

    from creditgate.billing.models import auto_topup_configs
    from creditgate.config import normalize_database_url
    from creditgate.db import Database

    async def fail_it() -> None:
        db = Database(normalize_database_url(database_url), pool_size=1)
        try:
            async with db.write() as conn:
                await conn.execute(
                    update(auto_topup_configs)
                    .where(auto_topup_configs.c.account_id == account)
                    .values(
                        error="Your card was declined.",
                        disabled_reason="3 failed attempts",
                        last_failed_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
                    )
                )
        finally:
            await db.dispose()

    asyncio.run(fail_it())
    raw = _raw(b.topup.config.with_raw_response.get(account_id=account))["result"]
    assert raw == {
        "amount": 5000,
        "threshold": 500,
        "disabledReason": "3 failed attempts",
        "error": "Your card was declined.",
        "lastFailedAt": 1893553445000,
    }
    got = b.credit_balance(account_id=account).topup_config
    assert (got.disabled_reason, got.last_failed_at) == ("3 failed attempts", 1893553445000)
    b.topup.config.create(account_id=account, amount=5000, threshold=500)  # a new config clears it
    assert _raw(b.topup.config.with_raw_response.get(account_id=account))["result"]["error"] is None


def test_topup_config_validation(server: support.LiveServer) -> None:
    account = support.create_account(server)
    client = sdk(server, support.create_token(server, account, "write"))
    b = client.ai_gateway.billing
    cases = [
        ({"amount": 999, "threshold": 500}, "/amount"),
        ({"amount": 1000, "threshold": 499}, "/threshold"),
        ({"amount": True, "threshold": 500}, "/amount"),
        ({"amount": 1000, "threshold": False}, "/threshold"),
        ({"amount": 1000.0, "threshold": 500}, "/amount"),
        ({"amount": 1000, "threshold": "500"}, "/threshold"),
    ]
    for body, pointer in cases:
        with pytest.raises(cloudflare.BadRequestError) as err:
            b.topup.config.create(account_id=account, **body)
        assert err.value.errors[0].source.pointer == pointer, body
    with pytest.raises(cloudflare.BadRequestError) as err:
        b.topup.config.create(account_id=account, amount=1000, threshold=500, extra_body={"enabled": True})
    assert err.value.errors[0].source.pointer == "/enabled"
    with pytest.raises(cloudflare.BadRequestError) as err:
        client.post(
            f"/accounts/{account}/ai-gateway/billing/topup/config", body={"amount": 5000}, cast_to=object
        )
    assert err.value.errors[0].source.pointer == "/threshold"
    assert b.topup.config.get(account_id=account).amount is None  # nothing was stored


def test_topup_config_writes_can_be_reserved_to_the_operator(database_url: str, tmp_path: Path) -> None:
    with clocked_server(database_url, tmp_path, topup_config_api_writes=False) as (server, _clock):
        account = support.create_account(server)
        b = billing(server, support.create_token(server, account, "write"))
        for call in (
            lambda: b.topup.config.create(account_id=account, amount=5000, threshold=500),
            lambda: b.topup.config.delete(account_id=account),
        ):
            with pytest.raises(cloudflare.PermissionDeniedError) as err:
                call()
            assert err.value.errors[0].code == 10000
        operator = billing(server, support.ADMIN_TOKEN)
        operator.topup.config.create(account_id=account, amount=5000, threshold=500)
        assert b.topup.config.get(account_id=account).amount == 5000  # reads still work


def test_spending_limit_round_trip(server: support.LiveServer, database_url: str) -> None:
    account = support.create_account(server)
    b = billing(server, support.create_token(server, account, "write"))
    empty = {"enabled": False, "config": {"amount": None, "duration": None, "strategy": None}}
    assert _raw(b.spending_limit.with_raw_response.get(account_id=account))["result"] == empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        raw = b.spending_limit.with_raw_response.create(
            account_id=account, amount=10000, duration="monthly", strategy="fixed"
        )
        assert raw.http_response.status_code == 201
        assert _raw(raw)["result"] == {
            "enabled": True,
            "config": {"amount": 10000, "duration": "monthly", "strategy": "fixed"},
        }
        b.spending_limit.create(account_id=account, amount=250, duration="daily", strategy="sliding")
    got = b.spending_limit.get(account_id=account)
    assert got.enabled is True and (got.config.amount, got.config.duration, got.config.strategy) == (
        250,
        "daily",
        "sliding",
    )
    stored = sql_scalar(database_url, "SELECT amount FROM spending_limits WHERE account_id = :a", a=account)
    assert stored == cents(250)  # ledger units in storage, cents on the wire
    assert b.spending_limit.delete(account_id=account) == {}
    assert _raw(b.spending_limit.with_raw_response.get(account_id=account))["result"] == empty
    assert b.spending_limit.delete(account_id=account) == {}


def test_spending_limit_validation(server: support.LiveServer) -> None:
    account = support.create_account(server)
    b = billing(server, support.create_token(server, account, "write"))
    good = {"amount": 10000, "duration": "monthly", "strategy": "fixed"}
    cases = [
        ({"amount": 99}, "/amount"),
        ({"amount": True}, "/amount"),
        ({"amount": 100.5}, "/amount"),
        ({"duration": "yearly"}, "/duration"),
        ({"strategy": "rolling"}, "/strategy"),
        ({"duration": ["daily"]}, "/duration"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for change, pointer in cases:
            with pytest.raises(cloudflare.BadRequestError) as err:
                b.spending_limit.create(account_id=account, **{**good, **change})
            assert err.value.errors[0].source.pointer == pointer, change
        with pytest.raises(cloudflare.BadRequestError) as err:
            b.spending_limit.create(account_id=account, **good, extra_body={"enabled": True})
        assert err.value.errors[0].source.pointer == "/enabled"
    assert b.spending_limit.get(account_id=account).enabled is False
