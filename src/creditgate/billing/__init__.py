"""Billing by concept, each a module of rules and one repository: top-ups, cards, auto top-up,
refunds, invoices and statements, the webhook inbox (typed rows in billing.rows)."""
