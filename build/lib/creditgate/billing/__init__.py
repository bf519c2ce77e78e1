"""Billing: top-ups, invoices, statements, and the checks that tie them to the ledger."""
