"""JSON views of domain rows for the admin and gateway APIs. Money leaves as exact USD
decimal strings plus a cents number."""

from __future__ import annotations

from typing import Any

from creditgate.money import to_cents_number, to_usd_string


def account_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "currency": row.currency,
        "mode": row.mode,
        "balance_usd": to_usd_string(row.balance),
        "balance_cents": to_cents_number(row.balance),
        "held_usd": to_usd_string(row.held),
        "credit_limit_usd": to_usd_string(row.credit_limit),
        "created_at": row.created_at.isoformat(),
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
