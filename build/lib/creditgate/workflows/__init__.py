"""Workflows: one module per operation, the one function every front door calls.

A workflow owns the unit of work (transactions, group commit and batching), the card
processor calls, the mapping of errors, and the hooks that run after a commit. The adapters
(api, cli, jobs) parse their input, call one workflow function and render its result; the
domains below (billing, metering, limits, accounts, ledger) hold the rules and the storage.
"""

from creditgate.workflows.context import Context

__all__ = ["Context"]
