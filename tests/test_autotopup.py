"""The auto top-up state machine with the sandbox processor and a manual clock, on SQLite and
PostgreSQL: one charge per threshold crossing under concurrency, backoff, disable after three
declines (never a fourth charge), re-enable, 3-D Secure pause, the monthly cap."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from creditgate.money import cents
from tests import support
from tests.autotopup_support import (
    World,
    account_with_card,
    balance_cents,
    configure,
    events,
    save_card,
    spend,
    state,
    topups_of,
    world,
)
from tests.cloudflare_support import NOW, billing, ms, sandbox_charges

DECLINES = "4000000000000341"  # saves fine, every charge is declined
ALWAYS_3DS = "4000002760003184"  # off-session charges fail with authentication_required


@pytest.fixture
def w(fresh_database_url: str, tmp_path: Path) -> Iterator[World]:
    with world(fresh_database_url, tmp_path) as live:
        yield live


def _funded(w: World, card: str = "4242424242424242", grant_cents: int = 600) -> tuple[str, str]:
    account, token = account_with_card(w, card)
    support.grant(w.server, account, grant_cents)
    configure(w, account, token, amount=1000, threshold=500)
    return account, token


def test_hundreds_of_concurrent_debits_queue_exactly_one_charge(w: World) -> None:
    account, token = _funded(w, grant_cents=1000)
    stop = threading.Event()

    def worker() -> None:  # a job runner racing the debits, as `creditgate serve` would
        while not stop.is_set():
            w.run_jobs()

    runner = threading.Thread(target=worker)
    runner.start()
    try:
        spend(w, account, cents_each=2, count=300, workers=24)  # 1000 -> 400 cents, crossing 500 once
    finally:
        stop.set()
        runner.join()
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 1
    made = topups_of(w, account)
    assert [(t["origin"], t["status"], t["amount"]) for t in made] == [("auto", "completed", 1000)]
    assert support.balance_units(w.server, account) == cents(1000 - 600 + 1000)
    b = billing(w.server, token)
    [invoice] = b.invoice_history(account_id=account, type="auto").invoices
    assert (invoice.status, invoice.amount_paid, invoice.invoice_origin) == ("paid", 1000, "auto")
    assert invoice.created_by == "auto_topup"
    assert b.invoice_history(account_id=account, type="manual").invoices == []
    assert len(events(w, account, "balance.low")) == 1
    assert len(events(w, account, "topup.succeeded")) == 1
    assert len(events(w, account, "invoice.finalized")) == 1
    assert state(w, account)["state"] == "idle"
    with w.server.admin() as c:
        assert c.get("/admin/v1/reconcile").json()["ok"] is True


def test_a_second_queued_auto_topup_is_refused_by_the_database(w: World) -> None:
    """The guarantee does not rest on Python: a partial unique index allows one auto top-up
    waiting for its charge per account."""
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from creditgate.db import Database

    account, _ = _funded(w)
    spend(w, account, cents_each=200, count=1)  # 600 -> 400: queued, not charged yet
    [queued] = topups_of(w, account)
    assert queued["status"] == "created" and state(w, account)["state"] == "in_flight"

    async def insert_twin() -> None:
        db = Database(w.url, pool_size=1)
        try:
            async with db.write() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO topups (id, account_id, invoice_id, amount, currency, origin, "
                        "status, customer_id, payment_method_id, created_at, updated_at) "
                        "SELECT 'tu_twin', account_id, invoice_id, amount, currency, origin, status, "
                        "customer_id, payment_method_id, created_at, updated_at FROM topups WHERE id = :id"
                    ),
                    {"id": queued["id"]},
                )
        finally:
            await db.dispose()

    with pytest.raises(IntegrityError):
        asyncio.run(insert_twin())


def test_declines_back_off_then_disable_after_three_and_never_charge_again(w: World) -> None:
    account, token = _funded(w, card=DECLINES)
    b = billing(w.server, token)
    spend(w, account, cents_each=200, count=1)  # 600 -> 400
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 1
    config = b.topup.config.get(account_id=account)
    assert config.error and "card_declined" in config.error
    assert config.last_failed_at == ms(NOW) and config.disabled_reason is None
    assert state(w, account)["state"] == "backoff"

    w.advance(minutes=59)
    spend(w, account, cents_each=1, count=1)  # another debit under the threshold: still waiting
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 1

    w.advance(minutes=1)  # one hour after the first decline
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 2
    assert b.topup.config.get(account_id=account).last_failed_at == ms(w.clock())

    w.advance(hours=5, minutes=59)  # the second wait is six hours
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 2
    w.advance(minutes=1)
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 3

    balance = b.credit_balance(account_id=account)
    reason = balance.topup_config.disabled_reason
    assert reason and "3 consecutive" in reason
    assert balance.topup_config.last_failed_at == ms(w.clock())
    assert state(w, account)["state"] == "disabled"
    for _ in range(4):  # days pass, usage goes on: nothing is ever charged again
        w.advance(days=2)
        spend(w, account, cents_each=1, count=2)
        w.run_jobs()
    assert sandbox_charges(w.url, account) == 3
    assert [t["status"] for t in topups_of(w, account)] == ["failed"] * 3
    assert len(events(w, account, "topup.failed")) == 3
    [disabled] = events(w, account, "auto_topup.disabled")
    assert disabled["payload"]["data"]["code"] == "failures"
    assert len(events(w, account, "balance.low")) == 1
    assert balance_cents(w, account) == 400 - 9


def _disabled(w: World) -> tuple[str, str]:
    account, token = _funded(w, card=DECLINES)
    spend(w, account, cents_each=200, count=1)
    for wait in (0, 1, 6):
        w.advance(hours=wait)
        w.run_jobs()
    assert sandbox_charges(w.url, account) == 3 and state(w, account)["state"] == "disabled"
    return account, token


def test_a_new_card_re_enables_and_is_charged(w: World) -> None:
    account, token = _disabled(w)
    card = save_card(w, account, "4242424242424242")
    after = billing(w.server, token).credit_balance(account_id=account)
    assert after.topup_config.disabled_reason is None and after.topup_config.error is None
    assert after.payment_method is not None and after.payment_method.last4 == "4242"
    w.run_jobs()  # still under the threshold: the next pass charges the new default card
    assert sandbox_charges(w.url, account) == 4
    made = topups_of(w, account)
    assert (
        sorted((t["status"], t["origin"]) for t in made) == [("completed", "auto")] + [("failed", "auto")] * 3
    )
    assert state(w, account)["consecutive_failures"] == 0
    assert card["default"] is True and balance_cents(w, account) == 1400


def test_changing_the_config_re_enables_with_a_fresh_count(w: World) -> None:
    account, token = _disabled(w)
    b = billing(w.server, token)
    b.topup.config.create(account_id=account, amount=1500, threshold=600)
    cleared = b.topup.config.get(account_id=account)
    assert (cleared.disabled_reason, cleared.error, cleared.last_failed_at) == (None, None, None)
    w.run_jobs()  # the card still declines: one failure of a new series, not a fourth strike
    assert sandbox_charges(w.url, account) == 4
    after = state(w, account)
    assert after["state"] == "backoff" and after["consecutive_failures"] == 1
    assert b.topup.config.get(account_id=account).disabled_reason is None


def test_off_session_authentication_pauses_and_emits(w: World) -> None:
    account, token = _funded(w, card=ALWAYS_3DS)
    spend(w, account, cents_each=200, count=1)
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 1
    paused = state(w, account)
    assert paused["state"] == "paused" and paused["disabled_code"] == "authentication_required"
    reason = billing(w.server, token).credit_balance(account_id=account).topup_config.disabled_reason
    assert reason and "authenticate" in reason
    [event] = events(w, account, "auto_topup.disabled")
    assert event["payload"]["data"]["paused"] is True
    w.advance(days=3)
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 1  # paused: no retries
    save_card(w, account, "4242424242424242")
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 2 and state(w, account)["state"] == "idle"
    assert balance_cents(w, account) == 1400


def test_monthly_cap_stops_auto_topups_until_next_month(w: World) -> None:
    account, _ = _funded(w, grant_cents=600)
    with w.server.admin() as c:
        r = c.put(
            f"/admin/v1/accounts/{account}/auto-topup",
            json={"amount": 1000, "threshold": 500, "monthly_cap": 2000},
        )
        assert r.status_code == 200 and r.json()["monthly_cap"] == 2000, r.text
        bad = c.put(
            f"/admin/v1/accounts/{account}/auto-topup",
            json={"amount": 1000, "threshold": 500, "monthly_cap": 999},
        )
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "monthly_cap"
    for _ in range(3):  # each round takes the balance under 500 again
        spend(w, account, cents_each=1000, count=1)
        w.run_jobs()
    assert sandbox_charges(w.url, account) == 2
    capped = state(w, account)
    assert capped["state"] == "capped" and capped["spent_this_month"] == 2000
    assert "cap" in capped["error"] and capped["next_attempt_at"].startswith("2030-07-01")
    w.advance(days=16)  # 2030-07-01 12:00
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 3 and state(w, account)["spent_this_month"] == 1000


def test_no_card_disables_with_a_reason(w: World) -> None:
    account = support.create_account(w.server)
    token = support.create_token(w.server, account, "write")
    configure(w, account, token)
    w.run_jobs()
    reason = billing(w.server, token).credit_balance(account_id=account).topup_config.disabled_reason
    assert reason and "no saved card" in reason
    save_card(w, account, "4242424242424242")
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 1 and balance_cents(w, account) == 1000


def test_a_debit_that_bypasses_the_hook_is_caught_by_the_job(w: World) -> None:
    """Hold settlement and corrections debit without the usage route's hook: the job's sweep
    queues the top-up instead, still once."""
    account, _ = _funded(w)
    with w.server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/adjustments", json={"amount_cents": -200, "reason": "test"})
        assert r.status_code == 201, r.text
    assert topups_of(w, account) == [] and state(w, account)["state"] == "idle"
    w.run_jobs()
    w.run_jobs()
    assert sandbox_charges(w.url, account) == 1 and balance_cents(w, account) == 1400
    assert len(events(w, account, "balance.low")) == 1
