"""Billing on Stripe, against localstripe, on SQLite and PostgreSQL: the issue's "done means"
(auto top-up drained by concurrent usage charges 1000 cents once; a declining card is
disabled after three tries), webhook-driven completion of 3-D Secure top-ups, a duplicate
webhook, refunds reversing credits, and saving a card through a SetupIntent."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from creditgate.clock import Clock
from creditgate.db import Database
from creditgate.money import cents
from creditgate.payments.gateway import CardProcessor
from tests import stripe_support as ls
from tests import support
from tests.autotopup_support import World, configure, save_card, spend, state, topups_of, world
from tests.cloudflare_support import billing, sql_scalar
from tests.stripe_support import localstripe_url  # noqa: F401 - fixture

SECRET = "whsec_billing_tests"


@pytest.fixture
def w(
    fresh_database_url: str,
    tmp_path: Path,
    localstripe_url: str,  # noqa: F811
) -> Iterator[World]:
    def stripe(db: Database, clock: Clock) -> CardProcessor:
        return ls.processor(localstripe_url)

    with world(
        fresh_database_url,
        tmp_path,
        processor=stripe,
        payments="stripe",
        stripe_api_key=ls.API_KEY,
        stripe_webhook_secret=SECRET,
        stripe_api_base=localstripe_url,
        stripe_max_network_retries=0,
    ) as live:
        ls.register_webhook(localstripe_url, "cg-billing", live.server.base_url + "/webhooks/stripe", SECRET)
        yield live


def _account(w: World, card: str = "pm_card_visa") -> tuple[str, str, str]:
    """An account with a Stripe card saved through the admin API; (account, token, customer)."""
    account = support.create_account(w.server)
    save_card(w, account, card)
    customer = sql_scalar(w.url, "SELECT customer_id FROM billing_profiles WHERE account_id = :a", a=account)
    return account, support.create_token(w.server, account, "write"), str(customer)


def _intents(url: str, customer: str) -> list[Any]:
    """The PaymentIntents localstripe holds for a customer (its list cannot filter by one)."""
    listed = ls.raw_client(url).v1.payment_intents.list(params={"limit": 100})
    return [pi for pi in listed.auto_paging_iter() if pi.customer == customer]


def _raw_card(url: str, number: str) -> str:
    card = {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    return str(ls.raw_client(url).v1.payment_methods.create(params={"type": "card", "card": card}).id)  # type: ignore[typeddict-item]


def _eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "localstripe's webhook did not arrive"
        time.sleep(0.1)


def _post_event(
    w: World, event_type: str, obj: dict[str, Any], event_id: str | None = None
) -> httpx.Response:
    body = ls.event_body(event_type, obj, event_id)
    headers = {"Stripe-Signature": ls.stripe_signature(SECRET, body), "Content-Type": "application/json"}
    with httpx.Client(base_url=w.server.base_url, timeout=30) as c:
        return c.post("/webhooks/stripe", content=body, headers=headers)


def test_done_means_concurrent_usage_triggers_exactly_one_charge_of_1000_cents(
    w: World,
    localstripe_url: str,  # noqa: F811
) -> None:
    account, token, customer = _account(w)
    support.grant(w.server, account, 600)
    configure(w, account, token, amount=1000, threshold=500)
    spend(w, account, cents_each=2, count=150, workers=24)  # 600 -> 300 cents
    w.run_jobs()
    w.run_jobs()  # a second pass (or a second worker) changes nothing
    [intent] = _intents(localstripe_url, customer)
    assert (intent.amount, intent.status, intent.currency) == (1000, "succeeded", "usd")
    assert intent.metadata["account_id"] == account
    b = billing(w.server, token)
    assert b.credit_balance(account_id=account).balance == 1300
    [invoice] = b.invoice_history(account_id=account, type="auto").invoices
    assert (invoice.status, invoice.amount_due, invoice.amount_paid) == ("paid", 1000, 1000)
    _eventually(lambda: _inbox_has(w, "payment_intent.succeeded", intent.id))
    assert b.credit_balance(account_id=account).balance == 1300  # the webhook credited nothing more


def _inbox_has(w: World, raw_type: str, payment_id: str) -> bool:
    with w.server.admin() as c:
        found = c.get("/admin/v1/webhooks/inbox", params={"limit": 1000}).json()["events"]
    return any(e["raw_type"] == raw_type and e["payment_id"] == payment_id for e in found)


def test_done_means_a_declining_card_is_disabled_after_three_tries(
    w: World,
    localstripe_url: str,  # noqa: F811
) -> None:
    account, token, customer = _account(w, "pm_card_chargeCustomerFail")
    support.grant(w.server, account, 600)
    configure(w, account, token)
    spend(w, account, cents_each=200, count=1)
    for wait in (0, 1, 6):
        w.advance(hours=wait)
        w.run_jobs()
    b = billing(w.server, token)
    config = b.credit_balance(account_id=account).topup_config
    assert config.disabled_reason and "3 consecutive" in config.disabled_reason
    assert config.error and config.last_failed_at
    for _ in range(3):  # more usage, more passes, days later: never a fourth attempt
        w.advance(days=2)
        spend(w, account, cents_each=1, count=1)
        w.run_jobs()
    intents = _intents(localstripe_url, customer)
    assert len(intents) == 3 and all(pi.status == "requires_payment_method" for pi in intents)
    assert [t["status"] for t in topups_of(w, account)] == ["failed"] * 3
    assert b.invoice_history(account_id=account, type="auto").invoices[0].status == "uncollectible"


def test_a_three_d_secure_topup_is_completed_by_the_webhook_once(
    w: World,
    localstripe_url: str,  # noqa: F811
) -> None:
    account, token, _ = _account(w, _raw_card(localstripe_url, "4000002500003155"))
    b = billing(w.server, token)
    pending = b.topup.create(account_id=account, amount=2000)
    assert pending.status == "pending" and pending.client_secret
    [topup] = topups_of(w, account)
    ls.authenticate(localstripe_url, topup["payment_id"], pending.client_secret, success=True)
    _eventually(lambda: b.credit_balance(account_id=account).balance == 2000)
    assert topups_of(w, account)[0]["status"] == "completed"

    events = ls.raw_client(localstripe_url).v1.events.list(params={"limit": 100})
    [event] = [
        e
        for e in events.auto_paging_iter()
        if e.type == "payment_intent.succeeded" and e.data.object.id == topup["payment_id"]
    ]
    same = _post_event(w, "payment_intent.succeeded", event.data.object.to_dict(), event.id)
    assert same.status_code == 200 and same.json()["status"] == "duplicate"
    other = _post_event(w, "payment_intent.succeeded", event.data.object.to_dict())  # a new id, same payment
    assert other.status_code == 200 and other.json()["status"] == "processed"
    late_failure = {**event.data.object.to_dict(), "last_payment_error": {"code": "card_declined"}}
    out_of_order = _post_event(w, "payment_intent.payment_failed", late_failure)  # older news, arriving late
    assert out_of_order.status_code == 200, out_of_order.text
    assert b.credit_balance(account_id=account).balance == 2000
    assert topups_of(w, account)[0]["status"] == "completed"
    status = b.topup.status(account_id=account, payment_intent_id=pending.payment_intent_id)
    assert status.status == "completed"
    with w.server.admin() as c:
        assert c.get("/admin/v1/reconcile").json()["ok"] is True


def test_an_auto_topup_needing_3ds_pauses_until_the_customer_authenticates(
    w: World,
    localstripe_url: str,  # noqa: F811
) -> None:
    account, token, _ = _account(w, _raw_card(localstripe_url, "4000002500003155"))
    support.grant(w.server, account, 600)
    configure(w, account, token)
    spend(w, account, cents_each=200, count=1)
    w.run_jobs()
    paused = state(w, account)
    assert paused["state"] == "paused" and paused["pending_topup"]["client_secret"]
    b = billing(w.server, token)
    assert "authenticate" in (b.credit_balance(account_id=account).topup_config.disabled_reason or "")
    w.advance(hours=2)
    w.run_jobs()
    assert len(topups_of(w, account)) == 1  # no retry while paused
    pending = paused["pending_topup"]
    ls.authenticate(localstripe_url, pending["payment_id"], pending["client_secret"], success=True)
    _eventually(lambda: b.credit_balance(account_id=account).balance == 1400)
    after = state(w, account)
    assert after["state"] == "idle" and after["disabled_reason"] is None


def test_refunds_reverse_credits_once_from_the_api_and_from_webhooks(
    w: World,
    localstripe_url: str,  # noqa: F811
) -> None:
    account, token, _ = _account(w)
    billing(w.server, token).topup.create(account_id=account, amount=3000)
    [topup] = topups_of(w, account)
    with w.server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/topups/{topup['id']}/refund", json={"amount": 1000})
    assert r.status_code == 200, r.text
    refund = r.json()["refund"]
    assert refund["status"] == "succeeded" and refund["processor_refund_id"].startswith("re_")
    assert support.balance_units(w.server, account) == cents(2000)
    charge = ls.raw_client(localstripe_url).v1.payment_intents.retrieve(topup["payment_id"]).latest_charge
    assert charge.amount_refunded == 1000  # type: ignore[union-attr]

    def refund_event(refund_id: str, amount: int) -> dict[str, Any]:
        return {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "payment_intent": topup["payment_id"],
            "status": "succeeded",
        }

    # Stripe also reports our own refund by webhook (twice, under two event types): no effect.
    for event_type in ("refund.created", "charge.refund.updated"):
        sent = _post_event(w, event_type, refund_event(refund["processor_refund_id"], 1000))
        assert sent.json()["status"] == "processed", sent.text
    assert support.balance_units(w.server, account) == cents(2000)

    # A refund made in the Stripe dashboard reaches us only by webhook.
    outside = ls.raw_client(localstripe_url).v1.refunds.create(
        params={"payment_intent": topup["payment_id"], "amount": 500}
    )
    for _ in range(2):
        _post_event(w, "refund.created", refund_event(outside.id, 500))
    assert support.balance_units(w.server, account) == cents(1500)
    with w.server.admin() as c:
        view = c.get(f"/admin/v1/accounts/{account}/topups/{topup['id']}").json()
        assert (view["refunded"], view["refundable"]) == (1500, 1500)
        assert c.get("/admin/v1/reconcile").json()["ok"] is True


def test_a_card_saved_through_a_setup_intent_becomes_the_default(
    w: World,
    localstripe_url: str,  # noqa: F811
) -> None:
    account = support.create_account(w.server)
    token = support.create_token(w.server, account, "write")
    with w.server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/cards/setup")
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["client_secret"].startswith(session["setup_id"]) and session["processor"] == "stripe"
    raw = ls.raw_client(localstripe_url)
    confirmed = raw.v1.setup_intents.confirm(session["setup_id"], params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded"
    pm = str(confirmed.payment_method)
    # localstripe never sends setup_intent.succeeded: deliver what Stripe would.
    obj = {
        "id": session["setup_id"],
        "object": "setup_intent",
        "customer": session["customer_id"],
        "payment_method": pm,
        "status": "succeeded",
    }
    assert _post_event(w, "setup_intent.succeeded", obj).json()["status"] == "processed"
    b = billing(w.server, token)
    assert b.credit_balance(account_id=account).has_default_payment_method is True
    with w.server.admin() as c:  # the dashboard then posts the PaymentMethod: details filled in
        saved = c.post(f"/admin/v1/accounts/{account}/cards", json={"payment_method_id": pm})
        assert saved.status_code == 201, saved.text
    method = b.credit_balance(account_id=account).payment_method
    assert method is not None and (method.brand, method.last4) == ("visa", "4242")
    topup = b.topup.create(account_id=account, amount=1000)
    assert topup.status == "completed" and topup.last4 == "4242"
