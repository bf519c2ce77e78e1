"""The Stripe card processor, built on the official `stripe` SDK. The only module that
imports `stripe`.

Every POST carries an idempotency key. Keys that create something are derived from our own
ids (the account for a customer, the top-up or refund row for a charge or refund; the caller
passes those in), so a retried call can never create or charge twice. The two calls that
cannot harm when repeated (setting the default card, starting a SetupIntent for a browser)
get a fresh key per call, which still makes the SDK's own network retries safe. GETs need no
key. Declines come back as ChargeResult(status="failed"); a card refused at save raises
PaymentFailed; an unreachable or failing Stripe raises ProcessorUnavailable (outcome unknown:
retry with the same key).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import stripe

from creditgate.errors import Conflict, NotFound, PaymentFailed, ValidationError
from creditgate.payments.gateway import (
    ChargeRequest,
    ChargeResult,
    ProcessorEvent,
    ProcessorUnavailable,
    RefundResult,
    SavedCard,
    SetupSession,
    WebhookSignatureError,
)

if TYPE_CHECKING:
    from stripe.params import PaymentIntentCreateParams

    from creditgate.config import Settings

log = logging.getLogger("creditgate.payments.stripe")

# Stripe event type -> our normalised type (payment intents).
_PAYMENT_EVENTS = {
    "payment_intent.succeeded": "payment.succeeded",
    "payment_intent.payment_failed": "payment.failed",
    "payment_intent.canceled": "payment.failed",
    "payment_intent.requires_action": "payment.requires_action",
}
# Real Stripe sends both for one paid invoice (localstripe only the second): one meaning.
_INVOICE_PAID = ("invoice.paid", "invoice.payment_succeeded")
_REFUND_EVENTS = ("refund.created", "refund.updated", "charge.refund.updated")
# Card flows never redirect: then Stripe needs no return_url, and 3-D Secure still works
# (Stripe.js handles next_action in the page).
_NO_REDIRECTS: Any = {"enabled": True, "allow_redirects": "never"}


def _id(value: Any) -> str | None:
    """An expandable field (an id string or an expanded object) as its id."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return None


def _plain(obj: Any) -> dict[str, Any]:
    """A StripeObject (or dict) as a plain dict; SDK 16 objects are not dicts."""
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return dict(obj) if isinstance(obj, Mapping) else {}


def _metadata(obj: Mapping[str, Any]) -> dict[str, str]:
    raw = obj.get("metadata") or {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def _amount(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _failure(error: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(code, message) of a last_payment_error / error body; the decline code wins."""
    if not error:
        return None, None
    code = error.get("decline_code") or error.get("code") or error.get("type")
    return (str(code) if code else None), (str(error["message"]) if error.get("message") else None)


def charge_result(intent: Mapping[str, Any]) -> ChargeResult:
    """Map a PaymentIntent to our three outcomes. Anything not final and not failed (3-D
    Secure, a browser that has yet to confirm, "processing") is requires_action with the
    client_secret: the top-up stays pending until a webhook or a re-read settles it."""
    payment_id = str(intent.get("id") or "")
    status = intent.get("status")
    secret = intent.get("client_secret")
    if status == "succeeded":
        return ChargeResult(payment_id, "succeeded")
    if status == "canceled":
        why = f"canceled: {intent.get('cancellation_reason') or 'canceled'}"
        return ChargeResult(payment_id, "failed", failure_code="canceled", failure_message=why)
    if status == "requires_payment_method" and intent.get("last_payment_error"):
        code, message = _failure(intent.get("last_payment_error"))
        return ChargeResult(payment_id, "failed", failure_code=code, failure_message=message)
    return ChargeResult(payment_id, "requires_action", client_secret=secret)


class StripeProcessor:
    """CardProcessor on Stripe PaymentIntents, SetupIntents and Refunds, with its own
    StripeClient (no global SDK state)."""

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        timeout: float = 30.0,
    ) -> None:
        self._http = stripe.HTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )
        self._webhook_secret = webhook_secret

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeProcessor:
        api_key, webhook_secret = settings.secret("stripe_api_key"), settings.secret("stripe_webhook_secret")
        if not api_key or not webhook_secret:
            raise ValueError(
                "CREDITGATE_PAYMENTS=stripe needs CREDITGATE_STRIPE_API_KEY and "
                "CREDITGATE_STRIPE_WEBHOOK_SECRET"
            )
        return cls(
            api_key,
            webhook_secret,
            api_base=settings.stripe_api_base,
            max_network_retries=settings.stripe_max_network_retries,
        )

    def __repr__(self) -> str:  # never show the key or the signing secret
        return "StripeProcessor()"

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def create_customer(self, account_id: str, idempotency_key: str) -> str:
        try:
            customer = await self._client.v1.customers.create_async(
                params={"metadata": {"creditgate_account_id": account_id}},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _unexpected("create a customer", exc) from exc
        return str(customer.id)

    async def attach_card(self, customer_id: str, card: str) -> SavedCard:
        if not isinstance(card, str) or not card.startswith("pm_") or len(card) > 200:
            raise ValidationError("a Stripe PaymentMethod id (pm_...) is required", field="payment_method")
        try:
            method = await self._client.v1.payment_methods.attach_async(
                card,
                params={"customer": customer_id},
                options={"idempotency_key": f"cg-attach-{customer_id}-{card}"},
            )
        except stripe.CardError as exc:
            code, message = _failure(_plain(exc.error))
            raise PaymentFailed(message or "the card was declined", decline_code=code) from exc
        except stripe.InvalidRequestError as exc:
            raise ValidationError(
                f"Stripe refused the payment method: {exc.user_message or 'invalid'}", field="payment_method"
            ) from exc
        except stripe.StripeError as exc:
            raise _unexpected("attach a card", exc) from exc
        try:
            await self._client.v1.customers.update_async(
                customer_id,
                params={"invoice_settings": {"default_payment_method": method.id}},
                options={"idempotency_key": f"cg-default-{customer_id}-{method.id}-{uuid.uuid4().hex}"},
            )
        except stripe.StripeError as exc:
            raise _unexpected("set the default card", exc) from exc
        details = _plain(method).get("card") or {}
        return SavedCard(
            payment_method_id=str(method.id),
            brand=str(details.get("brand") or "unknown"),
            last4=str(details.get("last4") or ""),
            exp_month=_amount(details.get("exp_month")),
            exp_year=_amount(details.get("exp_year")),
        )

    async def create_setup_session(self, customer_id: str) -> SetupSession:
        try:
            intent = await self._client.v1.setup_intents.create_async(
                params={
                    "customer": customer_id,
                    "usage": "off_session",
                    "automatic_payment_methods": _NO_REDIRECTS,
                },
                options={"idempotency_key": f"cg-setup-{customer_id}-{uuid.uuid4().hex}"},
            )
        except stripe.StripeError as exc:
            raise _unexpected("start a card-saving session", exc) from exc
        return SetupSession(setup_id=str(intent.id), client_secret=str(intent.client_secret))

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        params: PaymentIntentCreateParams = {
            "amount": request.amount_cents,
            "currency": request.currency.lower(),
            "customer": request.customer_id,
            "payment_method": request.payment_method_id,
            "automatic_payment_methods": _NO_REDIRECTS,  # cards only need no return_url
            "confirm": True,
            "metadata": dict(request.metadata),
        }
        if request.off_session:
            params["off_session"] = True
        if request.description:
            params["description"] = request.description
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params=params,
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.CardError as exc:
            return await self._declined(exc)
        except stripe.IdempotencyError as exc:
            raise Conflict("the charge's idempotency key was reused with other parameters") from exc
        except stripe.InvalidRequestError as exc:
            # e.g. a detached card or a deleted customer: a failure of this charge, not an outage
            code, message = _failure(_plain(exc.error))
            pending = _plain(exc.error).get("payment_intent")
            return ChargeResult(
                _id(pending) or "", "failed", failure_code=code or "invalid_request", failure_message=message
            )
        except stripe.StripeError as exc:
            raise _unexpected("charge a card", exc) from exc
        return charge_result(_plain(intent))

    async def _declined(self, exc: stripe.CardError) -> ChargeResult:
        """A 402: a decline, or (off session) a card that needs the customer to authenticate.
        Real Stripe puts the PaymentIntent in the error; localstripe only the charge id."""
        error = _plain(exc.error)
        code, message = _failure(error)
        intent = _plain(error.get("payment_intent"))
        payment_id = _id(intent) or await self._intent_of_charge(_id(error.get("charge")))
        if error.get("code") == "authentication_required":
            return ChargeResult(
                payment_id or "",
                "requires_action",
                client_secret=intent.get("client_secret"),
                failure_code="authentication_required",
                failure_message=message,
            )
        return ChargeResult(
            payment_id or "", "failed", failure_code=code or "card_declined", failure_message=message
        )

    async def _intent_of_charge(self, charge_id: str | None) -> str | None:
        if not charge_id:
            return None
        try:
            charge = await self._client.v1.charges.retrieve_async(charge_id)
        except stripe.StripeError:
            log.warning("could not read charge %s to find its PaymentIntent", charge_id)
            return None
        return _id(_plain(charge).get("payment_intent"))

    async def payment_status(self, payment_id: str) -> ChargeResult:
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(payment_id)
        except stripe.InvalidRequestError as exc:
            raise NotFound(f"no Stripe payment {payment_id}") from exc
        except stripe.StripeError as exc:
            raise _unexpected("read a payment", exc) from exc
        return charge_result(_plain(intent))

    async def refund(self, payment_id: str, amount_cents: int, idempotency_key: str) -> RefundResult:
        try:
            refund = await self._client.v1.refunds.create_async(
                params={"payment_intent": payment_id, "amount": amount_cents},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.IdempotencyError as exc:
            raise Conflict("the refund's idempotency key was reused with other parameters") from exc
        except stripe.InvalidRequestError as exc:
            raise Conflict(f"Stripe refused the refund: {exc.user_message or 'invalid request'}") from exc
        except stripe.StripeError as exc:
            raise _unexpected("refund a payment", exc) from exc
        data = _plain(refund)
        return RefundResult(
            refund_id=str(data.get("id")),
            payment_id=_id(data.get("payment_intent")) or payment_id,
            amount_cents=_amount(data.get("amount")) or amount_cents,
            status=str(data.get("status") or "pending"),
        )

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProcessorEvent:
        signature = _header(headers, "Stripe-Signature")
        if not signature:
            raise WebhookSignatureError("missing Stripe-Signature header")
        try:
            event = self._client.construct_event(payload, signature, self._webhook_secret)
        except stripe.SignatureVerificationError as exc:
            raise WebhookSignatureError("the Stripe-Signature did not verify") from exc
        except ValueError as exc:  # a verified body that is not a JSON event
            raise WebhookSignatureError("the webhook body is not a Stripe event") from exc
        data = _plain(event)
        obj = _plain((data.get("data") or {}).get("object"))
        return normalize_event(str(data.get("id") or ""), str(data.get("type") or ""), obj)


def normalize_event(event_id: str, raw_type: str, obj: Mapping[str, Any]) -> ProcessorEvent:
    """A Stripe event (already verified) as a ProcessorEvent."""
    base: dict[str, Any] = {
        "id": event_id,
        "raw_type": raw_type,
        "metadata": _metadata(obj),
        "object_id": _id(obj.get("id")),
        "customer_id": _id(obj.get("customer")),
    }
    if raw_type in _PAYMENT_EVENTS:
        code, message = _failure(obj.get("last_payment_error"))
        if raw_type == "payment_intent.canceled":
            code, message = "canceled", f"canceled: {obj.get('cancellation_reason') or 'canceled'}"
        return ProcessorEvent(
            type=_PAYMENT_EVENTS[raw_type],
            payment_id=_id(obj.get("id")),
            amount_cents=_amount(obj.get("amount")),
            payment_method_id=_id(obj.get("payment_method")),
            failure_code=code,
            failure_message=message,
            **base,
        )
    if raw_type in _REFUND_EVENTS and obj.get("status") == "succeeded":
        return ProcessorEvent(
            type="refund.succeeded",
            payment_id=_id(obj.get("payment_intent")),
            amount_cents=_amount(obj.get("amount")),
            **base,
        )
    if raw_type == "setup_intent.succeeded":
        return ProcessorEvent(
            type="card.saved", payment_id=None, payment_method_id=_id(obj.get("payment_method")), **base
        )
    if raw_type in _INVOICE_PAID:
        return ProcessorEvent(
            type="invoice.paid",
            payment_id=_id(obj.get("payment_intent")),
            amount_cents=_amount(obj.get("amount_paid")),
            **base,
        )
    return ProcessorEvent(type="other", payment_id=None, **base)


def _unexpected(action: str, exc: stripe.StripeError) -> Exception:
    """Outages and configuration errors: the outcome is unknown or nothing happened. The
    message names the Stripe error class and request id, never the key."""
    request_id = getattr(exc, "request_id", None) or "-"
    status = getattr(exc, "http_status", None) or "-"
    name = type(exc).__name__
    log.warning("Stripe call failed (%s): %s, HTTP %s, request %s", action, name, status, request_id)
    return ProcessorUnavailable(f"could not {action} on Stripe ({type(exc).__name__}, HTTP {status})")
