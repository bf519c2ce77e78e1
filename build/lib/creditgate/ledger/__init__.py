"""The credit ledger: accounts' balances and their append-only entries."""
