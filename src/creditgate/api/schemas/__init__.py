"""Typed request and response schemas of every route, one module per area, and the helper
that turns them into each route's OpenAPI (bodies, responses, statuses, security)."""
