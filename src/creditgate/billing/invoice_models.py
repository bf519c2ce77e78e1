"""Tables behind the invoice document: the buyer's billing info and the gap-free number counters."""

from sqlalchemy import BigInteger, Column, ForeignKey, String, Table

from creditgate.db.metadata import metadata
from creditgate.db.types import UTCDateTime

# What a customer wants on its invoices (the buyer block). One row per account, optional.
# The fields are xAI's BillingInfo (name, email, Address, Stripe tax id type and number), so
# the xAI billing-info routes can serve the same row; NULL is "not given".
billing_info = Table(
    "billing_info",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=True),
    Column("line1", String(200), nullable=True),
    Column("line2", String(200), nullable=True),
    Column("city", String(100), nullable=True),
    Column("state", String(100), nullable=True),
    Column("postal_code", String(32), nullable=True),
    Column("country", String(2), nullable=True),  # ISO 3166-1 alpha-2
    Column("tax_id_type", String(32), nullable=True),  # a Stripe tax id type: eu_vat, us_ein, ...
    Column("tax_number", String(64), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The last invoice number issued in each number series (billing/numbering.py). A row is
# incremented with a guarded UPDATE ... RETURNING inside the transaction that inserts the
# invoice, so its row lock serializes issuers and a rollback gives the number back.
invoice_counters = Table(
    "invoice_counters",
    metadata,
    Column("series", String(80), primary_key=True),
    Column("last_number", BigInteger, nullable=False),
)
