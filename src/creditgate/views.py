"""JSON views of domain rows, shared by the admin API and the CLI. Money leaves as exact USD
decimal strings plus a cents number; times as ISO 8601."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from creditgate.billing import refunds
from creditgate.billing.autotopup_config import AutoTopupState
from creditgate.billing.rows import Card, Refund, Topup
from creditgate.limits.postpaid import PostpaidLimits, effective_limit
from creditgate.money import to_cents_number, to_usd_string


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def account_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "currency": row.currency,
        "mode": row.mode,
        "balance_usd": to_usd_string(row.balance),
        "balance_cents": to_cents_number(row.balance),
        "held_usd": to_usd_string(row.held),
        **_postpaid_fields(row.postpaid_hard_limit, row.postpaid_soft_limit, "postpaid_"),
        "created_at": row.created_at.isoformat(),
    }


def _postpaid_fields(hard: int, soft: int | None, prefix: str = "") -> dict[str, Any]:
    return {
        f"{prefix}hard_limit_usd": to_usd_string(hard),
        f"{prefix}soft_limit_usd": None if soft is None else to_usd_string(soft),
        f"{prefix}effective_limit_usd": to_usd_string(effective_limit(hard, soft)),
    }


def postpaid_limits_view(limits: PostpaidLimits) -> dict[str, Any]:
    """An account's postpaid spending limits: the operator's hard limit, the customer's soft
    limit (null when never set) and the effective one, as USD strings and cents."""
    return {
        "account_id": limits.account_id,
        **_postpaid_fields(limits.hard, limits.soft),
        "hard_limit_cents": to_cents_number(limits.hard),
        "soft_limit_cents": None if limits.soft is None else to_cents_number(limits.soft),
        "effective_limit_cents": to_cents_number(limits.effective),
    }


def entry_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "kind": row.kind,
        "amount_usd": to_usd_string(row.amount),
        "amount_cents": to_cents_number(row.amount),
        "balance_after_usd": to_usd_string(row.balance_after),
        "ref": row.ref,
        "reason": row.reason,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "created_at": row.created_at.isoformat(),
    }


def token_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "scope": row.scope,
        "prefix": row.prefix,
        "name": row.name,
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def topup_view(topup: Topup, refund_list: list[Refund]) -> dict[str, Any]:
    return {
        "id": topup.id,
        "account_id": topup.account_id,
        "invoice_id": topup.invoice_id,
        "amount": topup.amount,
        "currency": topup.currency,
        "origin": topup.origin,
        "status": topup.status,
        "payment_id": topup.payment_id,
        "client_secret": topup.client_secret if topup.status == "pending" else None,
        "failure_code": topup.failure_code,
        "failure_message": topup.failure_message,
        "created_at": _iso(topup.created_at),
        "refunded": sum(r.amount for r in refund_list if r.status == "succeeded"),
        "refundable": refunds.refundable(topup, refund_list),
        "refunds": [refund_view(r) for r in refund_list],
    }


def refund_view(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "topup_id": refund.topup_id,
        "amount": refund.amount,
        "status": refund.status,
        "processor_refund_id": refund.processor_refund_id,
        "reason": refund.reason,
        "failure_message": refund.failure_message,
        "created_at": _iso(refund.created_at),
        "completed_at": _iso(refund.completed_at),
    }


def card_view(card: Card, processor_name: str) -> dict[str, Any]:
    return {
        "account_id": card.account_id,
        "payment_method_id": card.payment_method_id,
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "default": card.is_default,
        "processor": processor_name,
    }


def auto_topup_view(state: AutoTopupState) -> dict[str, Any]:
    """The admin API's auto top-up state: config, monthly cap, spend, failures, pending top-up."""
    config = state.config
    return {
        "state": state.state,
        "amount": config.amount,
        "threshold": config.threshold,
        "monthly_cap": config.monthly_cap,
        "spent_this_month": state.spent_this_month,
        "error": config.error,
        "disabled_reason": config.disabled_reason,
        "disabled_code": state.disabled_code,
        "last_failed_at": _iso(config.last_failed_at),
        "consecutive_failures": state.failures,
        "next_attempt_at": _iso(state.next_attempt_at),
        "pending_topup": topup_view(state.pending, []) if state.pending else None,
    }


def auto_topup_summary(state: AutoTopupState) -> dict[str, Any]:
    """The CLI's shorter auto top-up state (`creditgate autotopup show`)."""
    return {
        "state": state.state,
        "amount": state.config.amount,
        "threshold": state.config.threshold,
        "monthly_cap": state.config.monthly_cap,
        "spent_this_month": state.spent_this_month,
        "error": state.config.error,
        "disabled_reason": state.config.disabled_reason,
        "consecutive_failures": state.failures,
        "next_attempt_at": _iso(state.next_attempt_at),
        "pending_topup_id": state.pending.id if state.pending else None,
    }
