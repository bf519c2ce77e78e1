"""The success bodies of the xAI routes, as served on SQLite and PostgreSQL, match the typed
schemas /openapi.json gives them (written from the same message classes), and those schemas
reject what protojson never writes."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests import support
from tests.cloudflare_support import add_card
from tests.test_xai_access import INFO, USAGE_BODY
from tests.xai_support import new_team

TYPED = [
    ("get", "/auth/management-keys/validation"),
    ("get", "/v1/billing/teams/{team_id}/billing-info"),
    ("post", "/v1/billing/teams/{team_id}/billing-info"),
    ("get", "/v1/billing/teams/{team_id}/payment-method"),
    ("post", "/v1/billing/teams/{team_id}/payment-method/default"),
    ("get", "/v1/billing/teams/{team_id}/invoices"),
    ("get", "/v1/billing/teams/{team_id}/prepaid/balance"),
    ("get", "/v1/billing/teams/{team_id}/postpaid/spending-limits"),
    ("get", "/v1/billing/teams/{team_id}/postpaid/invoice/preview"),
    ("post", "/v1/billing/teams/{team_id}/postpaid/spending-limits"),
    ("post", "/v1/billing/teams/{team_id}/prepaid/top-up"),
    ("post", "/v1/billing/teams/{team_id}/usage"),
]


@pytest.fixture(scope="module")
def schemas(server: support.LiveServer) -> dict[tuple[str, str], Any]:
    with httpx.Client(base_url=server.base_url, timeout=120) as c:  # a large document
        paths = c.get("/openapi.json").json()["paths"]
    return {
        (method, path): paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        for method, path in TYPED
    }


def test_success_bodies_match_their_typed_schemas(
    server: support.LiveServer, schemas: dict[tuple[str, str], Any]
) -> None:
    team = new_team(server)
    card = add_card(server, team.id)["payment_method_id"]
    support.grant(server, team.id, 500)
    calls: list[tuple[str, str, Any]] = [
        ("get", "/v1/billing/teams/{team_id}/billing-info", None),  # never set: null
        ("post", "/v1/billing/teams/{team_id}/billing-info", {"billingInfo": INFO}),
        ("get", "/v1/billing/teams/{team_id}/billing-info", None),
        ("post", "/v1/billing/teams/{team_id}/payment-method/default", {"paymentMethodId": card}),
        ("post", "/v1/billing/teams/{team_id}/prepaid/top-up", {"amount": {"val": "1000"}}),
        ("get", "/v1/billing/teams/{team_id}/payment-method", None),
        ("get", "/v1/billing/teams/{team_id}/invoices", None),
        ("get", "/v1/billing/teams/{team_id}/prepaid/balance", None),
        ("get", "/v1/billing/teams/{team_id}/postpaid/spending-limits", None),
        ("get", "/v1/billing/teams/{team_id}/postpaid/invoice/preview", None),
        ("post", "/v1/billing/teams/{team_id}/usage", USAGE_BODY),
        ("get", "/auth/management-keys/validation", None),
    ]
    with server.client(team.write) as c:
        for method, path, body in calls:
            r = c.request(method.upper(), path.format(team_id=team.id), json=body)
            assert r.status_code == 200, (path, r.text)
            errors = [
                e.message for e in jsonschema_rs.validator_for(schemas[(method, path)]).iter_errors(r.json())
            ]
            assert errors == [], (path, r.text)


@pytest.mark.parametrize(
    ("key", "body"),
    [
        (("get", "/v1/billing/teams/{team_id}/prepaid/balance"), {"changes": [], "total": {"val": -5}}),
        (("get", "/v1/billing/teams/{team_id}/prepaid/balance"), {"changes": []}),
        (("get", "/v1/billing/teams/{team_id}/prepaid/balance"), {"changes": [], "total": None, "x": 1}),
        (("post", "/v1/billing/teams/{team_id}/payment-method/default"), {"a": 1}),
        (("post", "/v1/billing/teams/{team_id}/usage"), {"timeSeries": [], "limitReached": "no"}),
    ],
)
def test_typed_schemas_reject_what_protojson_never_writes(
    schemas: dict[tuple[str, str], Any], key: tuple[str, str], body: Any
) -> None:
    assert not jsonschema_rs.validator_for(schemas[key]).is_valid(body)
