"""Logs and metrics: structlog set-up and the Prometheus series every layer may record."""
