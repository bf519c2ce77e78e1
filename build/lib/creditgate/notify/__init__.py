"""Outgoing webhooks: operator-registered endpoints, an outbox written in the domain's own
transaction, Standard Webhooks signatures, and leased, retried deliveries."""
