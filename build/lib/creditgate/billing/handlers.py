"""Billing's handlers for processor webhooks, registered with the inbox at import time (the
app and the job runner import this module).

    payment.succeeded  -> the top-up is completed: credited once, invoice paid
    payment.failed     -> the top-up failed: invoice uncollectible, the error recorded
    refund.succeeded   -> the refund's credit is taken out of the ledger, once
    card.saved         -> a SetupIntent finished: the card becomes the default

Every handler goes through the same functions as the synchronous paths
(`topups.record_charge`, `refunds.apply_refund`), so an event that arrives twice, late, out
of order or after the synchronous answer changes nothing more. An event about an object we
do not know is IGNORED.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.billing import autotopup_repo as arepo
from creditgate.billing import cards, inbox, refunds, service, topups
from creditgate.billing.topups import Topup
from creditgate.errors import NotFound
from creditgate.ledger import service as ledger
from creditgate.payments.gateway import ChargeResult, ProcessorEvent, SavedCard

log = logging.getLogger("creditgate.billing.handlers")


async def find_topup(conn: AsyncConnection, event: ProcessorEvent) -> Topup | None:
    """The top-up an event is about: by our metadata (topup_id, checked against the account),
    else by the processor's payment id."""
    topup_id = event.metadata.get("topup_id")
    if topup_id:
        try:
            found = await topups.get_topup(conn, topup_id)
        except NotFound:
            found = None
        account = event.metadata.get("account_id")
        if found is not None and (account is None or account == found.account_id):
            return found
    if event.payment_id:
        row = await arepo.topup_by_payment(conn, event.payment_id)
        if row is not None:
            return await topups.get_topup(conn, row.id)
    return None


def _amount_mismatch(event: ProcessorEvent, topup: Topup) -> bool:
    if event.amount_cents is not None and event.amount_cents != topup.amount:
        log.warning(
            "event %s says %s cents for top-up %s of %s cents: ignored",
            event.id,
            event.amount_cents,
            topup.id,
            topup.amount,
        )
        return True
    return False


async def payment_succeeded(conn: AsyncConnection, event: ProcessorEvent, now: datetime) -> object:
    topup = await find_topup(conn, event)
    if topup is None or _amount_mismatch(event, topup):
        return inbox.IGNORED
    if topup.payment_id and event.payment_id and topup.payment_id != event.payment_id:
        log.warning("top-up %s was paid by %s and %s", topup.id, topup.payment_id, event.payment_id)
    await topups.record_charge(conn, topup.id, ChargeResult(event.payment_id or "", "succeeded"), now)
    return None


async def payment_failed(conn: AsyncConnection, event: ProcessorEvent, now: datetime) -> object:
    topup = await find_topup(conn, event)
    if topup is None or _amount_mismatch(event, topup):
        return inbox.IGNORED
    if topup.payment_id and event.payment_id and topup.payment_id != event.payment_id:
        return inbox.IGNORED  # a failure of some other payment attempt: not this top-up's
    result = ChargeResult(
        event.payment_id or "",
        "failed",
        failure_code=event.failure_code or "payment_failed",
        failure_message=event.failure_message or "The payment failed.",
    )
    await topups.record_charge(conn, topup.id, result, now)
    return None


async def refund_succeeded(conn: AsyncConnection, event: ProcessorEvent, now: datetime) -> object:
    if not event.payment_id or not event.object_id or not event.amount_cents:
        return inbox.IGNORED
    row = await arepo.topup_by_payment(conn, event.payment_id)
    if row is None:
        return inbox.IGNORED
    topup = await topups.get_topup(conn, row.id)
    await refunds.apply_refund(conn, topup, event.object_id, event.amount_cents, now)
    return None


async def card_saved(conn: AsyncConnection, event: ProcessorEvent, now: datetime) -> object:
    """A browser finished a SetupIntent: the card becomes the account's default. The event has
    no card details; they are filled in when the dashboard posts the PaymentMethod to the
    cards API (or stay `unknown`)."""
    if not event.customer_id or not event.payment_method_id:
        return inbox.IGNORED
    profile = await arepo.profile_by_customer(conn, event.customer_id)
    if profile is None:
        return inbox.IGNORED
    account_id = profile.account_id
    await ledger.lock(conn, [account_id])
    try:
        card = await service.get_card(conn, account_id, event.payment_method_id)
        saved = SavedCard(card.payment_method_id, card.brand, card.last4, card.exp_month, card.exp_year)
    except NotFound:
        saved = SavedCard(event.payment_method_id, "unknown", "")
    await cards.card_saved(
        conn, account_id, processor=profile.processor, customer=event.customer_id, card=saved, now=now
    )
    return None


inbox.register("payment.succeeded", payment_succeeded)
inbox.register("payment.failed", payment_failed)
inbox.register("refund.succeeded", refund_succeeded)
inbox.register("card.saved", card_saved)
