"""Refund a top-up: record the intent, ask the processor, record the answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from creditgate.billing import refunds, topups
from creditgate.billing.rows import Refund, Topup
from creditgate.errors import Conflict, CreditgateError, ServiceUnavailable, ValidationError
from creditgate.ledger import service as ledger
from creditgate.workflows.context import Context


@dataclass(frozen=True)
class TopupRefunds:
    """A top-up with every refund made of it, and the refund this call made (if any)."""

    topup: Topup
    refunds: list[Refund]
    made: Refund | None = None


async def refund_topup(
    ctx: Context,
    account_id: str,
    topup_id: str,
    *,
    amount: Any,
    reason: str | None,
    request_key: str | None,
) -> TopupRefunds:
    """Refund a top-up (all that is left when `amount` is None): record the intent, ask the
    processor (idempotency key `refund:<row id>`), record the answer. Safe to repeat."""
    proc = ctx.require_processor()
    now = ctx.clock()
    async with ctx.db.write() as conn:
        refund, topup = await refunds.begin_refund(
            conn, account_id, topup_id, amount=amount, reason=reason, request_key=request_key, now=now
        )
    if refund is not None and refund.status == "created":
        try:
            result = await proc.refund(str(topup.payment_id), refund.amount, refund.idempotency_key)
        except (Conflict, ValidationError) as exc:  # refused: nothing was refunded
            async with ctx.db.write() as conn:
                await refunds.fail_refund(conn, refund.id, exc.message, now)
            raise
        except CreditgateError:
            raise
        except Exception as exc:
            raise ServiceUnavailable(
                f"the card processor could not be reached; refund {refund.id} is recorded and will be "
                "completed under the same key: send the same request again"
            ) from exc
        async with ctx.db.write() as conn:
            refund = await refunds.record_refund(conn, refund.id, result, now)
    async with ctx.db.read() as conn:
        topup, refund_list = await refunds.topup_with_refunds(conn, account_id, topup_id)
    return TopupRefunds(topup, refund_list, refund)


async def get_topup(ctx: Context, account_id: str, topup_id: str) -> TopupRefunds:
    """One of the account's top-ups with its refunds."""
    async with ctx.db.read() as conn:
        topup, refund_list = await refunds.topup_with_refunds(conn, account_id, topup_id)
    return TopupRefunds(topup, refund_list)


async def list_topups(ctx: Context, account_id: str, *, limit: int) -> list[TopupRefunds]:
    """The account's top-ups, newest first, each with its refunds."""
    async with ctx.db.read() as conn:
        await ledger.get_account(conn, account_id)
        found = await topups.list_topups(conn, account_id, limit=limit)
        return [TopupRefunds(t, await refunds.list_refunds(conn, t.id)) for t in found]
