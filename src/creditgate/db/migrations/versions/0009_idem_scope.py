"""Idempotency-Keys are scoped per account (as Stripe scopes them): the key of
idempotency_keys becomes (account_id, scope, key).

Revision ID: 0009_idem_scope
Revises: 0008_hold_sql

Stored records are grant and adjustment responses, which name their account; they keep
replaying after the upgrade. The downgrade keeps one record per (scope, key), the oldest.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0009_idem_scope"
down_revision = "0008_hold_sql"
branch_labels = None
depends_on = None

_PK = "pk_idempotency_keys"
_keys = sa.table(
    "idempotency_keys",
    sa.column("account_id", sa.String),
    sa.column("scope", sa.String),
    sa.column("key", sa.String),
    sa.column("response", sa.String),
    sa.column("created_at", sa.DateTime),
)


def _account_of(response: str) -> str:
    try:
        found = json.loads(response).get("account_id")
    except (ValueError, AttributeError):
        return ""
    return found if isinstance(found, str) and len(found) <= 64 else ""


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("account_id", sa.String(64), nullable=False, server_default=""))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_keys.c.scope, _keys.c.key, _keys.c.response)).all()
    for scope, key, response in rows:
        account_id = _account_of(response)
        if account_id:
            bind.execute(
                _keys.update().where(_keys.c.scope == scope, _keys.c.key == key).values(account_id=account_id)
            )
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_constraint(_PK, type_="primary")
        batch.create_primary_key(_PK, ["account_id", "scope", "key"])
        batch.alter_column("account_id", server_default=None, existing_type=sa.String(64))


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_keys.c.account_id, _keys.c.scope, _keys.c.key).order_by(
            _keys.c.created_at, _keys.c.account_id
        )
    ).all()
    seen: set[tuple[str, str]] = set()
    for account_id, scope, key in rows:  # the same key on two accounts: keep the oldest
        if (scope, key) in seen:
            bind.execute(
                _keys.delete().where(
                    _keys.c.account_id == account_id, _keys.c.scope == scope, _keys.c.key == key
                )
            )
        seen.add((scope, key))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_constraint(_PK, type_="primary")
        batch.create_primary_key(_PK, ["scope", "key"])
        batch.drop_column("account_id")
