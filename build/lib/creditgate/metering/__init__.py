"""Metering: the price catalog, usage ingestion and hourly/daily rollups."""
