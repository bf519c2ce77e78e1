"""Buying credit from the billing portal: optionally save the card typed into the form (it
becomes the default), then charge through `topup.create_topup` (the one charge path); and
the sandbox's 3-D Secure step, played in the portal as Stripe's would be in Stripe.js."""

from __future__ import annotations

from creditgate.billing import topups
from creditgate.billing.rows import Topup
from creditgate.errors import NotFound
from creditgate.payments.sandbox import SandboxProcessor
from creditgate.workflows import cards, topup
from creditgate.workflows.context import Context
from creditgate.workflows.topup import TopupRequest


async def top_up(
    ctx: Context, account_id: str, *, amount_cents: int, new_card: str | None, request_key: str
) -> Topup:
    """Charge `amount_cents` to the default card, or to `new_card` after saving it. Returns the
    top-up (completed, or pending 3-D Secure); a decline is PaymentFailed with nothing credited.
    `request_key` (one per rendered form) makes a resubmitted form the same top-up."""
    payment_method = None
    if new_card:
        payment_method = (await cards.save_card(ctx, account_id, new_card)).payment_method_id
    request = TopupRequest(account_id, amount_cents, payment_method, request_key=f"portal:{request_key}")
    return (await topup.create_topup(ctx, request)).topup


async def authenticate_sandbox(ctx: Context, account_id: str, invoice_id: str, *, succeed: bool) -> Topup:
    """Complete (or fail) the sandbox 3-D Secure step of the account's top-up, then bring the
    top-up up to date (PaymentFailed when authentication failed). NotFound unless the sandbox
    processor is in use or for another account's invoice."""
    proc = ctx.require_processor()
    if not isinstance(proc, SandboxProcessor):
        raise NotFound("the sandbox card processor is not in use on this server")
    async with ctx.db.read() as conn:
        pending = await topups.topup_for_invoice(conn, account_id, invoice_id)
    if pending.status == "pending" and pending.client_secret:
        await proc.authenticate(pending.client_secret, succeed=succeed)
    return await topup.topup_status(ctx, account_id, invoice_id)
