"""Spending limits and holds: the authorize / settle / void path."""
