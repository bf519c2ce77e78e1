"""The Stripe processor against localstripe: customers, cards, charges on and off session,
3-D Secure, declines, refunds and signed webhooks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from creditgate.config import Settings
from creditgate.errors import Conflict, NotFound, PaymentFailed, ValidationError
from creditgate.payments.gateway import (
    CardProcessor,
    ChargeRequest,
    ProcessorUnavailable,
    WebhookSignatureError,
)
from creditgate.payments.stripe import StripeProcessor, normalize_event
from tests import stripe_support as ls
from tests.stripe_support import Sink, localstripe_url, sink  # noqa: F401 - fixtures

SECRET = "whsec_processor_tests"


@pytest.fixture(autouse=True)
def _flushed(localstripe_url: str) -> Iterator[None]:  # noqa: F811
    ls.flush(localstripe_url)
    yield


@pytest.fixture
def hooks(localstripe_url: str, sink: Sink) -> Sink:  # noqa: F811
    ls.register_webhook(localstripe_url, "cg-processor-tests", sink.url, SECRET)
    return sink


def _charge(
    customer: str, pm: str, tag: str, *, off_session: bool = True, amount: int = 1000
) -> ChargeRequest:
    return ChargeRequest(
        customer_id=customer,
        payment_method_id=pm,
        amount_cents=amount,
        currency="USD",
        off_session=off_session,
        idempotency_key=f"topup-{tag}",
        metadata={"topup_id": tag},
        description="creditgate top-up",
    )


def test_it_satisfies_the_protocol(localstripe_url: str) -> None:  # noqa: F811
    proc: CardProcessor = ls.processor(localstripe_url)
    assert proc.name == "stripe"


def test_customer_is_created_once_per_key(localstripe_url: str) -> None:  # noqa: F811
    async def scenario(p: StripeProcessor) -> tuple[str, str, str]:
        first = await p.create_customer("acct-1", "customer-acct-1")
        again = await p.create_customer("acct-1", "customer-acct-1")
        other = await p.create_customer("acct-2", "customer-acct-2")
        return first, again, other

    first, again, other = ls.with_processor(localstripe_url, scenario)
    assert first == again and first.startswith("cus_")
    assert other != first
    customer = ls.raw_client(localstripe_url).v1.customers.retrieve(first)
    assert customer.metadata["creditgate_account_id"] == "acct-1"


def test_attach_card_saves_it_as_the_default(localstripe_url: str) -> None:  # noqa: F811
    async def scenario(p: StripeProcessor) -> tuple[str, object]:
        customer = await p.create_customer("acct-card", f"c-{uuid.uuid4().hex}")
        return customer, await p.attach_card(customer, "pm_card_visa")

    customer, card = ls.with_processor(localstripe_url, scenario)
    assert card.payment_method_id.startswith("pm_") and card.last4 == "4242"  # type: ignore[attr-defined]
    assert card.brand == "visa" and card.exp_year  # type: ignore[attr-defined]
    stored = ls.raw_client(localstripe_url).v1.customers.retrieve(customer)
    assert stored.invoice_settings.default_payment_method == card.payment_method_id  # type: ignore[attr-defined,union-attr]


def test_card_refused_at_save_raises_payment_failed(localstripe_url: str) -> None:  # noqa: F811
    async def scenario(p: StripeProcessor) -> None:
        customer = await p.create_customer("acct-refused", f"c-{uuid.uuid4().hex}")
        with pytest.raises(PaymentFailed) as refused:
            await p.attach_card(customer, "pm_card_visa_chargeDeclined")
        assert refused.value.decline_code == "card_declined"
        with pytest.raises(ValidationError) as not_pm:
            await p.attach_card(customer, "4242424242424242")
        assert not_pm.value.field == "payment_method"
        with pytest.raises(ValidationError):
            await p.attach_card(customer, "pm_does_not_exist")

    ls.with_processor(localstripe_url, scenario)


def test_off_session_charge_succeeds_once_per_key(localstripe_url: str, hooks: Sink) -> None:  # noqa: F811
    tag = uuid.uuid4().hex

    async def scenario(p: StripeProcessor) -> tuple[object, object, object]:
        customer = await p.create_customer("acct-ok", f"c-{tag}")
        card = await p.attach_card(customer, "pm_card_visa")
        first = await p.charge(_charge(customer, card.payment_method_id, tag))
        replay = await p.charge(_charge(customer, card.payment_method_id, tag))
        return first, replay, await p.payment_status(first.payment_id)

    first, replay, status = ls.with_processor(localstripe_url, scenario, SECRET)
    assert first.status == "succeeded" and first.payment_id.startswith("pi_")  # type: ignore[attr-defined]
    assert replay == first  # the same key never charges twice
    assert status.status == "succeeded"  # type: ignore[attr-defined]
    intents = ls.raw_client(localstripe_url).v1.payment_intents.list().data
    assert [i.id for i in intents if i.metadata.to_dict().get("topup_id") == tag] == [first.payment_id]  # type: ignore[attr-defined]


def test_off_session_decline_is_a_result_not_an_exception(localstripe_url: str, hooks: Sink) -> None:  # noqa: F811
    tag = uuid.uuid4().hex

    async def scenario(p: StripeProcessor) -> tuple[object, object]:
        customer = await p.create_customer("acct-decline", f"c-{tag}")
        card = await p.attach_card(customer, "pm_card_chargeCustomerFail")  # 4000000000000341
        assert card.last4 == "0341"
        result = await p.charge(_charge(customer, card.payment_method_id, tag))
        return result, await p.payment_status(result.payment_id)

    result, reread = ls.with_processor(localstripe_url, scenario, SECRET)
    assert result.status == "failed"  # type: ignore[attr-defined]
    assert result.failure_code == "card_declined" and result.failure_message  # type: ignore[attr-defined]
    assert result.payment_id.startswith("pi_")  # type: ignore[attr-defined]
    assert reread.status == "failed"  # type: ignore[attr-defined]

    body, headers = hooks.wait_for(lambda b, h: tag.encode() in b and b"payment_intent.payment_failed" in b)
    event = ls.processor(localstripe_url, SECRET).parse_webhook(body, headers)
    assert event.type == "payment.failed" and event.raw_type == "payment_intent.payment_failed"
    assert event.payment_id == result.payment_id  # type: ignore[attr-defined]
    assert event.metadata["topup_id"] == tag
    assert event.failure_message


def test_three_d_secure_returns_a_client_secret_then_completes(localstripe_url: str) -> None:  # noqa: F811
    tag = uuid.uuid4().hex
    raw = ls.raw_client(localstripe_url)
    card = {"number": "4000002500003155", "exp_month": 12, "exp_year": 2034, "cvc": "123"}

    async def scenario(p: StripeProcessor) -> list[object]:
        customer = await p.create_customer("acct-3ds", f"c-{tag}")
        out: list[object] = []
        for i, success in enumerate((True, False)):
            pm = raw.v1.payment_methods.create(params={"type": "card", "card": card})  # type: ignore[typeddict-item]
            saved = await p.attach_card(customer, pm.id)
            pending = await p.charge(
                _charge(customer, saved.payment_method_id, f"{tag}-{i}", off_session=False)
            )
            assert pending.status == "requires_action" and pending.client_secret
            assert (await p.payment_status(pending.payment_id)).status == "requires_action"
            ls.authenticate(localstripe_url, pending.payment_id, pending.client_secret, success=success)
            out.append(await p.payment_status(pending.payment_id))
        return out

    passed, failed = ls.with_processor(localstripe_url, scenario)
    assert passed.status == "succeeded"  # type: ignore[attr-defined]
    assert failed.status == "failed"  # type: ignore[attr-defined]
    assert failed.failure_code == "payment_intent_authentication_failure"  # type: ignore[attr-defined]


def test_setup_session_has_a_client_secret(localstripe_url: str) -> None:  # noqa: F811
    async def scenario(p: StripeProcessor) -> object:
        customer = await p.create_customer("acct-setup", f"c-{uuid.uuid4().hex}")
        return await p.create_setup_session(customer)

    session = ls.with_processor(localstripe_url, scenario)
    assert session.setup_id.startswith("seti_")  # type: ignore[attr-defined]
    assert session.client_secret.startswith(session.setup_id + "_secret")  # type: ignore[attr-defined]


def test_refund_is_partial_and_idempotent(localstripe_url: str) -> None:  # noqa: F811
    tag = uuid.uuid4().hex

    async def scenario(p: StripeProcessor) -> tuple[object, object, str]:
        customer = await p.create_customer("acct-refund", f"c-{tag}")
        card = await p.attach_card(customer, "pm_card_visa")
        paid = await p.charge(_charge(customer, card.payment_method_id, tag, amount=2500))
        first = await p.refund(paid.payment_id, 1000, f"refund-{tag}-1")
        again = await p.refund(paid.payment_id, 1000, f"refund-{tag}-1")
        with pytest.raises(Conflict):  # the same key with another amount
            await p.refund(paid.payment_id, 900, f"refund-{tag}-1")
        # (localstripe does not refuse refunding more than is left; real Stripe does, and
        # that 400 maps to Conflict the same way as the one above.)
        return first, again, paid.payment_id

    first, again, payment_id = ls.with_processor(localstripe_url, scenario)
    assert first == again
    assert first.refund_id.startswith("re_") and first.status == "succeeded"  # type: ignore[attr-defined]
    assert first.amount_cents == 1000 and first.payment_id == payment_id  # type: ignore[attr-defined]
    charge = ls.raw_client(localstripe_url).v1.payment_intents.retrieve(payment_id).latest_charge
    assert charge.amount_refunded == 1000  # type: ignore[union-attr]


def test_unknown_payment_is_not_found(localstripe_url: str) -> None:  # noqa: F811
    async def scenario(p: StripeProcessor) -> None:
        with pytest.raises(NotFound):
            await p.payment_status("pi_does_not_exist")

    ls.with_processor(localstripe_url, scenario)


def test_unreachable_stripe_is_an_unknown_outcome(tmp_path: Path) -> None:
    from tests.support import free_port

    async def scenario(p: StripeProcessor) -> None:
        with pytest.raises(ProcessorUnavailable) as down:
            await p.charge(_charge("cus_x", "pm_x", "down"))
        assert ls.API_KEY not in str(down.value)

    ls.with_processor(f"http://127.0.0.1:{free_port()}", scenario)


def test_webhook_signature_from_localstripe_verifies(localstripe_url: str, hooks: Sink) -> None:  # noqa: F811
    tag = uuid.uuid4().hex

    async def scenario(p: StripeProcessor) -> str:
        customer = await p.create_customer("acct-hook", f"c-{tag}")
        card = await p.attach_card(customer, "pm_card_visa")
        return (await p.charge(_charge(customer, card.payment_method_id, tag))).payment_id

    payment_id = ls.with_processor(localstripe_url, scenario, SECRET)
    body, headers = hooks.wait_for(lambda b, h: payment_id.encode() in b and b"payment_intent.succeeded" in b)
    proc = ls.processor(localstripe_url, SECRET)
    event = proc.parse_webhook(body, headers)
    assert event.type == "payment.succeeded" and event.payment_id == payment_id
    assert event.metadata == {"topup_id": tag} and event.amount_cents == 1000
    assert event.id.startswith("evt_") and event.customer_id and event.customer_id.startswith("cus_")

    tampered = body.replace(b'"amount": 1000', b'"amount": 9000').replace(b'"amount":1000', b'"amount":9000')
    assert tampered != body
    with pytest.raises(WebhookSignatureError):
        proc.parse_webhook(tampered, headers)
    with pytest.raises(WebhookSignatureError):
        ls.processor(localstripe_url, "whsec_someone_else").parse_webhook(body, headers)
    with pytest.raises(WebhookSignatureError):
        proc.parse_webhook(body, {})
    stale = ls.stripe_signature(SECRET, body, timestamp=1_000_000_000)
    with pytest.raises(WebhookSignatureError):
        proc.parse_webhook(body, {"stripe-signature": stale})


def test_own_signer_matches_stripe() -> None:
    """The tests' independent signer agrees with the SDK, so the inbox tests can rely on it."""
    body = ls.event_body("payment_intent.succeeded", {"id": "pi_1", "object": "payment_intent"})
    proc = StripeProcessor(ls.API_KEY, SECRET)
    event = proc.parse_webhook(body, {"Stripe-Signature": ls.stripe_signature(SECRET, body)})
    assert event.payment_id == "pi_1"
    with pytest.raises(WebhookSignatureError):
        proc.parse_webhook(b"not json", {"Stripe-Signature": ls.stripe_signature(SECRET, b"not json")})


@pytest.mark.parametrize("raw_type", ["invoice.paid", "invoice.payment_succeeded"])
def test_invoice_paid_events_mean_the_same(raw_type: str) -> None:
    event = normalize_event(
        "evt_1", raw_type, {"id": "in_1", "payment_intent": "pi_9", "amount_paid": 700, "customer": "cus_1"}
    )
    assert (event.type, event.object_id, event.payment_id, event.amount_cents) == (
        "invoice.paid",
        "in_1",
        "pi_9",
        700,
    )


def test_normalisation_of_other_events() -> None:
    canceled = normalize_event(
        "evt_2",
        "payment_intent.canceled",
        {"id": "pi_2", "cancellation_reason": "abandoned", "metadata": {"a": 1}},
    )
    assert canceled.type == "payment.failed" and canceled.failure_code == "canceled"
    assert canceled.metadata == {"a": "1"}
    refund = normalize_event(
        "evt_3",
        "refund.created",
        {"id": "re_1", "status": "succeeded", "amount": 300, "payment_intent": "pi_3"},
    )
    assert (refund.type, refund.object_id, refund.payment_id, refund.amount_cents) == (
        "refund.succeeded",
        "re_1",
        "pi_3",
        300,
    )
    pending = normalize_event("evt_4", "refund.created", {"id": "re_2", "status": "pending"})
    assert pending.type == "other"
    saved = normalize_event(
        "evt_5",
        "setup_intent.succeeded",
        {"id": "seti_1", "customer": {"id": "cus_5"}, "payment_method": "pm_5"},
    )
    assert (saved.type, saved.customer_id, saved.payment_method_id) == ("card.saved", "cus_5", "pm_5")
    failed = normalize_event(
        "evt_6",
        "payment_intent.payment_failed",
        {
            "id": "pi_6",
            "last_payment_error": {
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
            },
        },
    )
    assert (failed.failure_code, failed.failure_message) == (
        "insufficient_funds",
        "Your card has insufficient funds.",
    )
    assert normalize_event("evt_7", "customer.created", {"id": "cus_7"}).type == "other"


def test_secrets_never_show_in_reprs(tmp_path: Path) -> None:
    settings = Settings(
        database_url="sqlite+aiosqlite:///x.db",
        data_dir=tmp_path,
        payments="stripe",
        stripe_api_key="sk_test_supersecret",
        stripe_webhook_secret="whsec_supersecret",
    ).checked()
    assert "supersecret" not in repr(settings)
    assert "supersecret" not in repr(StripeProcessor.from_settings(settings))
    with pytest.raises(ValueError, match="CREDITGATE_STRIPE_WEBHOOK_SECRET") as missing:
        settings.replace(stripe_webhook_secret=None).checked()
    assert "supersecret" not in str(missing.value)
