"""Every key of a per-account table includes `account_id` (docs/scaling.md: sharding by
account), with no exceptions left.

Revision ID: 0020_account_keys
Revises: 0019_usage_partitions

Primary keys become (id, account_id) (statement_charges: (invoice_id, ticket, account_id)):
the account is in the key, and a lookup by id alone still uses the key's first column, so no
index is added. The unique invoice ids of topups and statements and the unique (event,
endpoint) of webhook deliveries gain the account, and every reference between these tables
carries it ((invoice_id, account_id) -> invoices (id, account_id), ...), so rows that refer to
each other are co-located. webhook_attempts gains account_id, copied from its delivery.

Integer ids (ledger_entries, usage_pending, webhook_deliveries, webhook_attempts) keep their
values and PostgreSQL sequences; SQLite no longer numbers them (only a lone INTEGER PRIMARY KEY
is numbered there), so `id_series` holds the last id given per table (db/serial.py).

SQLite rebuilds each table (batch mode) with its foreign keys enforced: a parent is rebuilt only
after its children reference it by (id, account_id), which a temporary unique index on the old
parent serves; once that index is gone, dropping the old parent finds no parent key to check
(SQLite ignores such a mismatch) and the rebuilt parent's primary key serves the references.
The downgrade needs ids unique per table again, which the code has always produced.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_account_keys"
down_revision = "0019_usage_partitions"
branch_labels = None
depends_on = None

# table -> its primary key before (the account is appended); parents before children
_PRIMARY = {
    "invoices": ["id"],
    "webhook_events": ["id"],
    "topups": ["id"],
    "webhook_deliveries": ["id"],
    "topup_refunds": ["id"],
    "webhook_attempts": ["id"],
    "statements": None,  # keyed (account_id, period_start) already
    "statement_charges": ["invoice_id", "ticket"],
    "holds": ["id"],
    "ledger_entries": ["id"],
    "usage_pending": ["id"],
}
# table -> the unique columns before (the account is appended)
_UNIQUE = {
    "topups": ["invoice_id"],
    "statements": ["invoice_id"],
    "webhook_deliveries": ["event_id", "endpoint_id"],
}
# child -> (its column, the parent it references by id)
_REFERENCES = {
    "topups": ("invoice_id", "invoices"),
    "statements": ("invoice_id", "invoices"),
    "statement_charges": ("invoice_id", "invoices"),
    "topup_refunds": ("topup_id", "topups"),
    "webhook_deliveries": ("event_id", "webhook_events"),
    "webhook_attempts": ("delivery_id", "webhook_deliveries"),
}
_SERIAL = ("ledger_entries", "usage_pending", "webhook_deliveries", "webhook_attempts")
# names SQLite gives reflected constraints created without one (statement_charges, 0013)
_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}
_ACCOUNT = "account_id"
_series = sa.table("id_series", sa.column("name", sa.String), sa.column("last_id", sa.BigInteger))


def _pg() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def _uq(table: str, columns: list[str]) -> str:
    return f"uq_{table}_{'_'.join(columns)}"


def _fk(table: str) -> str:
    column, parent = _REFERENCES[table]
    return f"fk_{table}_{column}_{parent}"


def _old_name(table: str, kind: str) -> str:
    """The name a constraint of before this revision has (statement_charges' were unnamed:
    PostgreSQL's own names; SQLite's reflected ones are named by _CONVENTION)."""
    if table == "statement_charges" and _pg():
        return "statement_charges_pkey" if kind == "pk" else "statement_charges_invoice_id_fkey"
    return f"pk_{table}" if kind == "pk" else _fk(table)


def _rekey(table: str, *, forward: bool, with_reference: bool) -> None:
    """Rekey one table (forward: add the account; else take it away again). SQLite rebuilds the
    table once; `with_reference`: also drop and create its reference to its parent (on
    PostgreSQL references are dropped before and created after all keys change)."""
    primary, unique = _PRIMARY[table], _UNIQUE.get(table)
    with op.batch_alter_table(table, naming_convention=_CONVENTION) as batch:
        if with_reference and table in _REFERENCES:
            batch.drop_constraint(_old_name(table, "fk") if forward else _fk(table), type_="foreignkey")
        if unique:
            batch.drop_constraint(_uq(table, unique if forward else [*unique, _ACCOUNT]), type_="unique")
        if primary:
            batch.drop_constraint(_old_name(table, "pk") if forward else f"pk_{table}", type_="primary")
            if forward:
                batch.create_primary_key(f"pk_{table}", [*primary, _ACCOUNT])
            else:
                batch.create_primary_key(_old_name(table, "pk"), primary)
        if unique:
            columns = [*unique, _ACCOUNT] if forward else unique
            batch.create_unique_constraint(_uq(table, columns), columns)
        if with_reference and table in _REFERENCES:
            name, local, remote = _reference(table, forward=forward)
            batch.create_foreign_key(name, _REFERENCES[table][1], local, remote)
        if table == "webhook_attempts" and forward:
            batch.alter_column(_ACCOUNT, existing_type=sa.String(64), nullable=False, server_default=None)


def _reference(table: str, *, forward: bool) -> tuple[str, list[str], list[str]]:
    """(name, columns, parent columns) of `table`'s reference to its parent."""
    column, _ = _REFERENCES[table]
    if forward:
        return _fk(table), [column, _ACCOUNT], ["id", _ACCOUNT]
    return _old_name(table, "fk"), [column], ["id"]


def _pg_references(*, forward: bool) -> None:
    for table, (_, parent) in _REFERENCES.items():
        name, local, remote = _reference(table, forward=forward)
        op.create_foreign_key(name, table, parent, local, remote)


def upgrade() -> None:
    op.create_table(
        "id_series",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("last_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_id_series"),
    )
    op.add_column("webhook_attempts", sa.Column(_ACCOUNT, sa.String(64), nullable=True, server_default=""))
    op.execute(
        "UPDATE webhook_attempts SET account_id = (SELECT d.account_id FROM webhook_deliveries d "
        "WHERE d.id = webhook_attempts.delivery_id)"
    )
    if _pg():
        for table in _REFERENCES:
            op.drop_constraint(_old_name(table, "fk"), table, type_="foreignkey")
        for table in _PRIMARY:
            _rekey(table, forward=True, with_reference=False)
        _pg_references(forward=True)
        return
    for table in _SERIAL:
        highest = sa.func.coalesce(sa.func.max(sa.table(table, sa.column("id")).c.id), 0)
        op.execute(_series.insert().from_select(["name", "last_id"], sa.select(sa.literal(table), highest)))
    parents = {parent for _, parent in _REFERENCES.values()}
    for parent in parents:
        op.create_index(f"tmp_{parent}_id_account_id", parent, ["id", _ACCOUNT], unique=True)
    for table in reversed(_PRIMARY):  # children first
        if table in parents:
            op.drop_index(f"tmp_{table}_id_account_id", table_name=table)
        _rekey(table, forward=True, with_reference=True)


def downgrade() -> None:
    if _pg():
        for table in _REFERENCES:
            op.drop_constraint(_fk(table), table, type_="foreignkey")
        for table in _PRIMARY:
            _rekey(table, forward=False, with_reference=False)
        _pg_references(forward=False)
    else:
        parents = {parent for _, parent in _REFERENCES.values()}
        for parent in parents:
            op.create_index(f"tmp_{parent}_id", parent, ["id"], unique=True)
        for table in reversed(_PRIMARY):
            if table in parents:
                op.drop_index(f"tmp_{table}_id", table_name=table)
            _rekey(table, forward=False, with_reference=True)
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.drop_column(_ACCOUNT)
    op.drop_table("id_series")
