"""Accounts, their tokens and who may act on what."""
