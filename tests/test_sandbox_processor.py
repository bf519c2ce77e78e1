"""The sandbox card processor on its own: Stripe test-card semantics and idempotency keys."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
import pytest

from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.errors import Conflict, NotFound, PaymentFailed, ValidationError
from creditgate.payments.gateway import ChargeRequest, WebhookSignatureError
from creditgate.payments.sandbox import SandboxProcessor, sign_webhook

T = TypeVar("T")


def _run(database_url: str, work: Callable[[SandboxProcessor], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(normalize_database_url(database_url), pool_size=2)
        try:
            return await work(SandboxProcessor(db))
        finally:
            await db.dispose()

    return asyncio.run(main())


def _charge(customer: str, pm: str, key: str, amount: int = 1000, off_session: bool = False) -> ChargeRequest:
    return ChargeRequest(customer, pm, amount, "usd", off_session, key, {"why": "test"})


def test_charges_follow_the_test_cards(database_url: str) -> None:
    async def work(sbx: SandboxProcessor) -> dict[str, Any]:
        customer = await sbx.create_customer("acct", f"customer:{uuid.uuid4()}")
        out: dict[str, Any] = {}
        for number in ("4242424242424242", "4000000000000341", "4000002500003155", "4000002760003184"):
            pm = (await sbx.attach_card(customer, number)).payment_method_id
            on = await sbx.charge(_charge(customer, pm, f"on-{pm}"))
            off = await sbx.charge(_charge(customer, pm, f"off-{pm}", off_session=True))
            out[number] = (on.status, on.failure_code, bool(on.client_secret), off.status, off.failure_code)
        missing = await sbx.charge(_charge(customer, "pm_sbx_nope", f"x-{uuid.uuid4()}"))
        out["missing"] = (missing.status, missing.failure_code)
        out["count"] = await sbx.count_payments(customer)
        return out

    out = _run(database_url, work)
    assert out["4242424242424242"] == ("succeeded", None, False, "succeeded", None)
    assert out["4000000000000341"] == ("failed", "card_declined", False, "failed", "card_declined")
    assert out["4000002500003155"] == ("requires_action", None, True, "succeeded", None)
    assert out["4000002760003184"] == ("requires_action", None, True, "failed", "authentication_required")
    assert out["missing"] == ("failed", "payment_method_missing")
    assert out["count"] == 9


def test_idempotency_keys_replay_and_refuse_other_parameters(database_url: str) -> None:
    async def work(sbx: SandboxProcessor) -> tuple[Any, ...]:
        key = f"customer:{uuid.uuid4()}"
        customer = await sbx.create_customer("acct", key)
        assert await sbx.create_customer("acct", key) == customer
        pm = (await sbx.attach_card(customer, "4242-4242-4242-4242")).payment_method_id
        first, again = await asyncio.gather(*(sbx.charge(_charge(customer, pm, "k" + key)) for _ in range(2)))
        with pytest.raises(Conflict):
            await sbx.charge(_charge(customer, pm, "k" + key, amount=2000))
        refund = await sbx.refund(first.payment_id, 400, "r" + key)
        assert await sbx.refund(first.payment_id, 400, "r" + key) == refund
        with pytest.raises(ValidationError):
            await sbx.refund(first.payment_id, 601, "r2" + key)
        return first, again, await sbx.count_payments(customer)

    first, again, count = _run(database_url, work)
    assert first == again and first.status == "succeeded" and count == 1


def test_cards_refused_when_saved_and_3ds_completion(database_url: str) -> None:
    async def work(sbx: SandboxProcessor) -> list[Any]:
        customer = await sbx.create_customer("acct", f"customer:{uuid.uuid4()}")
        codes = []
        for number in ("4000000000000002", "4000000000009995", "4000000000000069"):
            with pytest.raises(PaymentFailed) as err:
                await sbx.attach_card(customer, number)
            codes.append(err.value.decline_code)
        for bad in ("4242424242424241", "abcd", "4111111111111111"):  # Luhn fails, junk, not a test card
            with pytest.raises(ValidationError):
                await sbx.attach_card(customer, bad)
        with pytest.raises(NotFound):
            await sbx.attach_card("cus_sbx_missing", "4242424242424242")
        pm = (await sbx.attach_card(customer, "4000002500003155")).payment_method_id
        pending = await sbx.charge(_charge(customer, pm, f"p-{uuid.uuid4()}"))
        assert pending.client_secret is not None
        with pytest.raises(NotFound):
            await sbx.authenticate(pending.payment_id + "_secret_wrong")
        done = await sbx.authenticate(pending.client_secret)
        assert await sbx.authenticate(pending.client_secret, succeed=False) == done  # already decided
        return [*codes, done.status, (await sbx.payment_status(pending.payment_id)).status]

    assert _run(database_url, work) == [
        "card_declined",
        "insufficient_funds",
        "expired_card",
        "succeeded",
        "succeeded",
    ]


def test_webhooks_are_verified() -> None:
    sbx = SandboxProcessor(store=None)  # type: ignore[arg-type]  # parsing needs no storage
    payload = orjson.dumps(
        {
            "id": "evt_1",
            "type": "payment.succeeded",
            "data": {"payment_id": "pi_sbx_1", "metadata": {"topup_id": "tu_1"}},
        }
    )
    event = sbx.parse_webhook(payload, {"Sandbox-Signature": sign_webhook(payload)})
    assert (event.type, event.payment_id, dict(event.metadata)) == (
        "payment.succeeded",
        "pi_sbx_1",
        {"topup_id": "tu_1"},
    )
    with pytest.raises(WebhookSignatureError):
        sbx.parse_webhook(payload, {"Sandbox-Signature": "0" * 64})
    with pytest.raises(WebhookSignatureError):
        sbx.parse_webhook(b"[]", {"Sandbox-Signature": sign_webhook(b"[]")})
