"""The xAI API's edge on SQLite and PostgreSQL: management keys (read vs write), team ids
(UUID only), a foreign team answering as a missing one, google.rpc.Status errors, the key
validation route, and billing-info get and set with their validation."""

from __future__ import annotations

import uuid

from tests import support
from tests.xai_support import Team, new_team, status_body

INFO = {
    "name": "Example Labs LLC",
    "address": {
        "line1": "500 Market St.",
        "line2": "",
        "city": "San Francisco",
        "country": "US",
        "postalCode": "94105",
        "state": "CA",
    },
    "email": "billing@example.com",
    "taxIdType": "us_ein",
    "taxNumber": "98-7654321",
}
READS = ("billing-info", "payment-method", "invoices", "prepaid/balance", "postpaid/invoice/preview")
USAGE_BODY = {
    "analyticsRequest": {
        "timeRange": {
            "startTime": "2025-11-01 00:00:00",
            "endTime": "2025-11-02 00:00:00",
            "timezone": "Etc/GMT",
        },
        "timeUnit": "TIME_UNIT_DAY",
        "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
    }
}


def test_keys_team_ids_and_foreign_teams(server: support.LiveServer) -> None:
    team, other = new_team(server), new_team(server)
    missing = str(uuid.uuid4())
    with server.client(team.read) as c:
        for tail in READS:
            assert c.get(team.path(tail)).status_code == 200, tail
            # a foreign team and a missing team get the same answer
            foreign = c.get(other.path(tail))
            absent = c.get(Team(missing, "", "").path(tail))
            assert status_body(foreign, 404, 5) == f"team {other.id} not found"
            assert absent.status_code == 404 and absent.json()["message"] == f"team {missing} not found"
            assert status_body(c.get(f"/v1/billing/teams/default/{tail}"), 400, 3) == "Invalid uuid"
            assert status_body(c.get(f"/v1/billing/teams/{team.id.replace('-', '')}/{tail}"), 400, 3)
        assert c.post(team.path("usage"), json=USAGE_BODY).status_code == 200  # usage is a read
        # a read key may not write; the answer for a foreign team stays 404
        assert "scope (read)" in status_body(
            c.post(team.path("billing-info"), json={"billingInfo": INFO}), 403, 7
        )
        assert c.post(other.path("billing-info"), json={"billingInfo": INFO}).status_code == 404
    with server.client(None) as c:
        assert status_body(c.get(team.path("billing-info")), 401, 16)
    with server.client("not-a-key") as c:
        assert status_body(c.get(team.path("billing-info")), 401, 16) == "Invalid access token"
    gateway = support.create_token(server, team.id, "gateway")
    with server.client(gateway) as c:
        assert status_body(c.get(team.path("billing-info")), 403, 7)
    with server.admin() as c:  # the operator may act on any team; a missing one is still 404
        assert c.get(team.path("prepaid/balance")).status_code == 200
        assert status_body(c.get(Team(missing, "", "").path("prepaid/balance")), 404, 5)
    with server.client(team.write) as c:
        assert c.post(team.path("billing-info"), json={"billingInfo": INFO}).status_code == 200
        r = c.get(team.path("postpaid/no-such-route"))  # an unknown route under the prefix
        assert status_body(r, 404, 5) == "Not Found"


def test_key_validation_names_the_team(server: support.LiveServer) -> None:
    team = new_team(server)
    with server.client(team.read) as c:
        r = c.get("/auth/management-keys/validation")
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["teamId"], body["scopeId"], body["scope"]) == (team.id, team.id, "SCOPE_TEAM")
        assert body["acls"] == ["BillingRead"]
    with server.client(team.write) as c:
        assert c.get("/auth/management-keys/validation").json()["acls"] == ["BillingRead", "BillingWrite"]
    with server.client(None) as c:
        assert status_body(c.get("/auth/management-keys/validation"), 401, 16)
    with server.admin() as c:
        assert status_body(c.get("/auth/management-keys/validation"), 403, 7)


def test_billing_info_round_trip_exact_json(server: support.LiveServer) -> None:
    team = new_team(server)
    url = team.path("billing-info")
    with server.client(team.write) as c:
        assert c.get(url).text == '{"billingInfo":null}'
        r = c.post(url, json={"billingInfo": INFO})
        assert (r.status_code, r.text) == (200, "{}")
        assert c.get(url).text == (
            '{"billingInfo":{"name":"Example Labs LLC","address":{"line1":"500 Market St.","line2":"",'
            '"city":"San Francisco","country":"US","postalCode":"94105","state":"CA"},'
            '"email":"billing@example.com","taxIdType":"us_ein","taxNumber":"98-7654321"}}'
        )
        # snake_case keys, unknown fields ignored, the docs' "us-ein" spelling read as us_ein,
        # and a full replacement: fields left out are cleared
        snake = {
            "billing_info": {"name": "Solo", "tax_id_type": "us-ein", "tax_number": "1", "extra": 1},
            "x": 2,
        }
        assert c.post(url, json=snake).status_code == 200
        assert c.get(url).text == (
            '{"billingInfo":{"name":"Solo","address":null,"email":"","taxIdType":"us_ein","taxNumber":"1"}}'
        )
    # the same record is the one the operator sees (and the invoice PDFs print)
    with server.admin() as c:
        stored = c.get(f"/admin/v1/accounts/{team.id}/billing-info").json()
        assert (stored["name"], stored["tax_id_type"]) == ("Solo", "us_ein")


def test_bad_billing_info_is_400_and_changes_nothing(server: support.LiveServer) -> None:
    team = new_team(server)
    url = team.path("billing-info")
    with server.client(team.write) as c:
        assert c.post(url, json={"billingInfo": INFO}).status_code == 200
        before = c.get(url).text
        cases = [
            (
                {"billingInfo": {**INFO, "address": {**INFO["address"], "country": "XX"}}},
                "billingInfo.address.country",
            ),
            (
                {"billingInfo": {**INFO, "address": {**INFO["address"], "country": "USA"}}},
                "billingInfo.address.country",
            ),
            ({"billingInfo": {**INFO, "taxIdType": "vat"}}, "billingInfo.taxIdType"),
            ({"billingInfo": {**INFO, "taxIdType": "xx_vat"}}, "billingInfo.taxIdType"),
            ({"billingInfo": {**INFO, "taxNumber": ""}}, "billingInfo.taxNumber"),
            ({"billingInfo": {**INFO, "name": ""}}, "billingInfo.name"),
            ({"billingInfo": {**INFO, "email": "nope"}}, "billingInfo.email"),
            ({"billingInfo": {**INFO, "name": 5}}, "billingInfo.name"),
            ({"billingInfo": {**INFO, "address": "Main St"}}, "billingInfo.address"),
            ({"billingInfo": None}, "billingInfo"),
            ({}, "billingInfo"),
        ]
        for body, field in cases:
            r = c.post(url, json=body)
            message = status_body(r, 400, 3)
            assert field in message, (body, message)
        assert status_body(c.post(url, content=b"{", headers={"content-type": "application/json"}), 400, 3)
        assert status_body(c.post(url, content=b"[]", headers={"content-type": "application/json"}), 400, 3)
        assert c.get(url).text == before
