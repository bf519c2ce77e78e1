"""THE SANDBOX: a built-in, fake card processor for the zero-configuration default.

No money moves and no card network is contacted. It follows Stripe's test-card semantics so
that flows can be tried end to end before Stripe is configured:

    4242424242424242  visa        succeeds (also 5555555555554444 mastercard, 378282246310005 amex)
    4000000000000002  visa        declined when saved (card_declined)
    4000000000009995  visa        declined when saved (insufficient_funds)
    4000000000000069  visa        declined when saved (expired_card)
    4000000000000341  visa        saves fine, every charge is declined (card_declined)
    4000002500003155  visa        on-session charges need 3-D Secure (requires_action +
                                  client_secret); off-session charges succeed once saved
    4000002760003184  visa        every charge needs 3-D Secure; off-session ones fail
                                  (authentication_required)

A charge that needs 3-D Secure is completed with `authenticate(client_secret)` (the admin
endpoint `POST /sandbox/v1/authenticate` and `creditgate sandbox authenticate` call it).

State lives in the `sandbox_*` tables of creditgate's own database, because the CLI and the
server are separate processes. The sandbox opens its own short transactions through the
`Store` it is given (as if it were a remote service); billing never calls it inside one.
Idempotency keys behave like Stripe's: the same key and parameters return the stored result,
the same key with other parameters is an error.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.clock import Clock, system_clock, to_ms
from creditgate.errors import Conflict, NotFound, PaymentFailed, ValidationError
from creditgate.ids import new_id, new_secret
from creditgate.payments.gateway import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    ProcessorEvent,
    RefundResult,
    SavedCard,
    SetupSession,
    WebhookSignatureError,
)
from creditgate.payments.sandbox_tables import cards, customers, payments, refunds

WEBHOOK_SECRET = b"whsec_sandbox_not_a_secret"  # the sandbox's public test secret
SIGNATURE_HEADER = "sandbox-signature"
EVENT_TYPES = frozenset(
    {"payment.succeeded", "payment.failed", "payment.requires_action", "refund.succeeded", "card.saved"}
)


@dataclass(frozen=True)
class TestCard:
    brand: str
    behaviour: str  # succeed | decline_on_save | decline_on_charge | authenticate | authenticate_always
    decline_code: str | None = None


TEST_CARDS: dict[str, TestCard] = {
    "4242424242424242": TestCard("visa", "succeed"),
    "5555555555554444": TestCard("mastercard", "succeed"),
    "378282246310005": TestCard("amex", "succeed"),
    "4000000000000002": TestCard("visa", "decline_on_save", "card_declined"),
    "4000000000009995": TestCard("visa", "decline_on_save", "insufficient_funds"),
    "4000000000000069": TestCard("visa", "decline_on_save", "expired_card"),
    "4000000000000341": TestCard("visa", "decline_on_charge", "card_declined"),
    "4000002500003155": TestCard("visa", "authenticate"),
    "4000002760003184": TestCard("visa", "authenticate_always"),
}

DECLINE_MESSAGES = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "authentication_required": "This payment needs 3-D Secure authentication and cannot be made off session.",
    "authentication_failed": "The cardholder failed 3-D Secure authentication.",
    "payment_method_missing": "The payment method is not saved on this customer.",
}


class Store(Protocol):
    """Where the sandbox keeps its state: creditgate's Database satisfies this."""

    def write(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]: ...


def normalize_card_number(card: str) -> str:
    """Digits only; ValidationError unless it is a plausible (Luhn-valid) card number."""
    digits = card.replace(" ", "").replace("-", "") if isinstance(card, str) else ""
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn_ok(digits):
        raise ValidationError("card must be a card number such as 4242424242424242", field="card")
    return digits


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _result(row: Any) -> ChargeResult:
    status: ChargeStatus = row.status
    return ChargeResult(
        payment_id=row.id,
        status=status,
        client_secret=row.client_secret if row.status == "requires_action" else None,
        failure_code=row.failure_code,
        failure_message=row.failure_message,
    )


async def _insert_once(conn: AsyncConnection, table: Table, row: dict[str, Any]) -> bool:
    """Insert; False when a unique key was taken (concurrently) instead."""
    try:
        async with conn.begin_nested():
            await conn.execute(table.insert().values(**row))
    except IntegrityError:
        return False
    return True


class SandboxProcessor:
    """The sandbox card processor (see the module docstring). Implements CardProcessor."""

    name = "sandbox"

    def __init__(self, store: Store, clock: Clock = system_clock) -> None:
        self._store = store
        self._clock = clock

    def _now_ms(self) -> int:
        return to_ms(self._clock())

    async def create_customer(self, account_id: str, idempotency_key: str) -> str:
        async with self._store.write() as conn:
            stmt = select(customers.c.id).where(customers.c.idempotency_key == idempotency_key)
            found = (await conn.execute(stmt)).scalar_one_or_none()
            if found is not None:
                return str(found)
            customer_id = new_id("cus_sbx")
            row = {
                "id": customer_id,
                "account_id": account_id,
                "idempotency_key": idempotency_key,
                "created_ms": self._now_ms(),
            }
            if await _insert_once(conn, customers, row):
                return customer_id
            return str((await conn.execute(stmt)).scalar_one())

    async def attach_card(self, customer_id: str, card: str) -> SavedCard:
        number = normalize_card_number(card)
        test = TEST_CARDS.get(number)
        if test is None:
            raise ValidationError(
                "the sandbox accepts only Stripe test cards: " + ", ".join(TEST_CARDS), field="card"
            )
        if test.behaviour == "decline_on_save":
            code = test.decline_code or "card_declined"
            raise PaymentFailed(f"{DECLINE_MESSAGES[code]} ({code})", decline_code=code)
        exp_year = self._clock().year + 3
        saved = SavedCard(new_id("pm_sbx"), test.brand, number[-4:], exp_month=12, exp_year=exp_year)
        async with self._store.write() as conn:
            await self._customer(conn, customer_id)
            await conn.execute(
                cards.insert().values(
                    id=saved.payment_method_id,
                    customer_id=customer_id,
                    behaviour=test.behaviour,
                    brand=saved.brand,
                    last4=saved.last4,
                    exp_month=12,
                    exp_year=exp_year,
                    created_ms=self._now_ms(),
                )
            )
        return saved

    async def create_setup_session(self, customer_id: str) -> SetupSession:
        """The sandbox has no browser step: cards are saved with attach_card directly. The
        session is returned for interface parity and needs no confirmation."""
        async with self._store.read() as conn:
            await self._customer(conn, customer_id)
        setup_id = new_id("seti_sbx")
        return SetupSession(setup_id=setup_id, client_secret=f"{setup_id}_secret_{new_secret(12)}")

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        if request.amount_cents <= 0:
            raise ValidationError("amount must be positive", field="amount")
        req_hash = _charge_hash(request)
        async with self._store.write() as conn:
            stored = await self._payment_by_key(conn, request.idempotency_key, req_hash)
            if stored is not None:
                return stored
            card = (
                await conn.execute(
                    select(cards).where(
                        cards.c.id == request.payment_method_id, cards.c.customer_id == request.customer_id
                    )
                )
            ).first()
            status, code = _decide(card.behaviour if card is not None else None, request.off_session)
            payment_id = new_id("pi_sbx")
            now = self._now_ms()
            row = {
                "id": payment_id,
                "idempotency_key": request.idempotency_key,
                "request_hash": req_hash,
                "customer_id": request.customer_id,
                "payment_method_id": request.payment_method_id,
                "amount_cents": request.amount_cents,
                "currency": request.currency.lower(),
                "status": status,
                "client_secret": f"{payment_id}_secret_{new_secret(18)}"
                if status == "requires_action"
                else None,
                "failure_code": code,
                "failure_message": DECLINE_MESSAGES.get(code) if code else None,
                "metadata": orjson.dumps(dict(request.metadata)).decode(),
                "created_ms": now,
                "updated_ms": now,
            }
            if not await _insert_once(conn, payments, row):
                stored = await self._payment_by_key(conn, request.idempotency_key, req_hash)
                if stored is None:  # the conflicting row was rolled back: let the caller retry
                    raise Conflict("a charge with this idempotency key is in progress")
                return stored
            return _result(_Row(row))

    async def payment_status(self, payment_id: str) -> ChargeResult:
        async with self._store.read() as conn:
            row = (await conn.execute(select(payments).where(payments.c.id == payment_id))).first()
        if row is None:
            raise NotFound(f"no sandbox payment {payment_id!r}")
        return _result(row)

    async def refund(self, payment_id: str, amount_cents: int, idempotency_key: str) -> RefundResult:
        if amount_cents <= 0:
            raise ValidationError("refund amount must be positive", field="amount")
        async with self._store.write() as conn:
            done = (
                await conn.execute(select(refunds).where(refunds.c.idempotency_key == idempotency_key))
            ).first()
            if done is not None:
                if done.payment_id != payment_id or done.amount_cents != amount_cents:
                    raise Conflict("idempotency key reused with different refund parameters")
                return RefundResult(done.id, payment_id, amount_cents, "succeeded")
            pay = (await conn.execute(select(payments).where(payments.c.id == payment_id))).first()
            if pay is None or pay.status != "succeeded":
                raise ValidationError("only a succeeded payment can be refunded", field="payment_id")
            refunded = (
                await conn.execute(
                    select(func.coalesce(func.sum(refunds.c.amount_cents), 0)).where(
                        refunds.c.payment_id == payment_id
                    )
                )
            ).scalar_one()
            if int(refunded) + amount_cents > pay.amount_cents:
                raise ValidationError("refund exceeds the unrefunded amount", field="amount")
            refund_id = new_id("re_sbx")
            row = {
                "id": refund_id,
                "idempotency_key": idempotency_key,
                "payment_id": payment_id,
                "amount_cents": amount_cents,
                "created_ms": self._now_ms(),
            }
            if not await _insert_once(conn, refunds, row):
                raise Conflict("a refund with this idempotency key is in progress")
        return RefundResult(refund_id, payment_id, amount_cents, "succeeded")

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProcessorEvent:
        """Sandbox events are JSON signed with HMAC-SHA256 under WEBHOOK_SECRET (see
        `sign_webhook`); the header is `Sandbox-Signature`."""
        lowered = {k.lower(): v for k, v in headers.items()}
        if not hmac.compare_digest(lowered.get(SIGNATURE_HEADER, ""), sign_webhook(payload)):
            raise WebhookSignatureError("sandbox webhook signature does not match")
        try:
            event = orjson.loads(payload)
            data = event.get("data") or {}
            raw_type = str(event["type"])
            return ProcessorEvent(
                id=str(event["id"]),
                type=raw_type if raw_type in EVENT_TYPES else "other",
                payment_id=data.get("payment_id"),
                metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
                failure_message=data.get("failure_message"),
                raw_type=raw_type,
            )
        except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError) as exc:
            raise WebhookSignatureError(f"malformed sandbox event: {exc}") from exc

    # Sandbox-only operations ---------------------------------------------------------------

    async def authenticate(self, client_secret: str, *, succeed: bool = True) -> ChargeResult:
        """Complete (or fail) the 3-D Secure step of a payment, as the cardholder would in the
        browser. Idempotent: a payment already decided keeps its result."""
        payment_id = client_secret.split("_secret_", 1)[0] if isinstance(client_secret, str) else ""
        async with self._store.write() as conn:
            row = (await conn.execute(select(payments).where(payments.c.id == payment_id))).first()
            if (
                row is None
                or not row.client_secret
                or not hmac.compare_digest(row.client_secret, client_secret)
            ):
                raise NotFound("no sandbox payment with this client_secret")
            if row.status == "requires_action":
                code = None if succeed else "authentication_failed"
                await conn.execute(
                    payments.update()
                    .where(payments.c.id == payment_id, payments.c.status == "requires_action")
                    .values(
                        status="succeeded" if succeed else "failed",
                        failure_code=code,
                        failure_message=DECLINE_MESSAGES.get(code) if code else None,
                        updated_ms=self._now_ms(),
                    )
                )
                row = (await conn.execute(select(payments).where(payments.c.id == payment_id))).first()
        return _result(row)

    async def count_payments(self, customer_id: str) -> int:
        """How many charges were made for a customer (every idempotency key counts once)."""
        async with self._store.read() as conn:
            stmt = select(func.count()).select_from(payments).where(payments.c.customer_id == customer_id)
            return int((await conn.execute(stmt)).scalar_one())

    async def _customer(self, conn: AsyncConnection, customer_id: str) -> None:
        found = (await conn.execute(select(customers.c.id).where(customers.c.id == customer_id))).first()
        if found is None:
            raise NotFound(f"no sandbox customer {customer_id!r}")

    async def _payment_by_key(self, conn: AsyncConnection, key: str, req_hash: str) -> ChargeResult | None:
        row = (await conn.execute(select(payments).where(payments.c.idempotency_key == key))).first()
        if row is None:
            return None
        if row.request_hash != req_hash:
            raise Conflict("idempotency key reused with different charge parameters")
        return _result(row)


class _Row:
    """Attribute access over a dict, so a fresh insert reads like a fetched row."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)


def _decide(behaviour: str | None, off_session: bool) -> tuple[str, str | None]:
    """(status, failure code) of a new charge on a card with this behaviour."""
    if behaviour is None:
        return "failed", "payment_method_missing"
    if behaviour == "decline_on_charge":
        return "failed", "card_declined"
    if behaviour == "authenticate":
        return ("succeeded", None) if off_session else ("requires_action", None)
    if behaviour == "authenticate_always":
        return ("failed", "authentication_required") if off_session else ("requires_action", None)
    return "succeeded", None


def _charge_hash(request: ChargeRequest) -> str:
    parts = [
        request.customer_id,
        request.payment_method_id,
        str(request.amount_cents),
        request.currency.lower(),
        str(request.off_session),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def sign_webhook(payload: bytes) -> str:
    """The Sandbox-Signature header value for a payload."""
    return hmac.new(WEBHOOK_SECRET, payload, hashlib.sha256).hexdigest()
