"""The buyer's billing info on SQLite and PostgreSQL: admin GET/PUT
/admin/v1/accounts/{id}/billing-info (validation naming the field, nothing half-written on a
bad request, replace semantics, operator only) and `creditgate billing-info set|show`."""

from __future__ import annotations

import json
from pathlib import Path

from tests import support

VALID = {
    "name": "Müller Ζήτα Жук GmbH",
    "email": "billing@example.com",
    "address": {
        "line1": "Hauptstraße 5",
        "line2": "",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "de",
    },
    "tax_id_type": "eu_vat",
    "tax_number": "DE123456789",
}


def test_admin_billing_info_round_trip_and_validation(server: support.LiveServer) -> None:
    account = support.create_account(server)
    url = f"/admin/v1/accounts/{account}/billing-info"
    with server.admin() as c:
        r = c.get(url)
        assert r.status_code == 404 and "no billing info" in r.text
        assert c.get("/admin/v1/accounts/nope-nope/billing-info").status_code == 404
        assert c.put("/admin/v1/accounts/nope-nope/billing-info", json=VALID).status_code == 404
        r = c.put(url, json=VALID)
        assert r.status_code == 200, r.text
        stored = r.json()
        assert stored["name"] == VALID["name"] and stored["account_id"] == account
        assert stored["address"] == {
            "line1": "Hauptstraße 5",
            "line2": None,  # an empty string is "not given", as in protobuf
            "city": "Berlin",
            "state": None,
            "postal_code": "10115",
            "country": "DE",
        }
        assert (stored["tax_id_type"], stored["tax_number"], stored["email"]) == (
            "eu_vat",
            "DE123456789",
            "billing@example.com",
        )
        assert c.get(url).json() == stored
        bad_cases = [
            ({**VALID, "name": None}, "name"),
            ({**VALID, "name": "   "}, "name"),
            ({**VALID, "name": "x" * 201}, "name"),
            ({**VALID, "name": "bell\x07"}, "name"),
            ({**VALID, "name": 7}, "name"),
            ({**VALID, "email": "not-an-email"}, "email"),
            ({**VALID, "address": "Berlin"}, "address"),
            ({**VALID, "address": {"country": "Germany"}}, "address.country"),
            ({**VALID, "address": {"planet": "Earth"}}, "address.planet"),
            ({**VALID, "tax_id_type": "VAT!"}, "tax_id_type"),
            ({**VALID, "tax_number": None}, "tax_number"),
            ({**VALID, "tax_id": "DE1"}, "tax_id"),
        ]
        for body, field in bad_cases:
            r = c.put(url, json=body)
            assert r.status_code == 400 and r.json()["error"]["field"] == field, (body, r.text)
        assert c.put(url, content=b"[1]", headers={"content-type": "application/json"}).status_code == 400
        assert c.get(url).json() == stored, "a rejected request changes nothing"
        r = c.put(url, json={"name": "Жук Ltd", "tax_number": "GB123"})
        assert r.status_code == 200
        replaced = r.json()
        assert replaced["email"] is None and replaced["address"]["city"] is None, "PUT replaces the record"
        assert (replaced["tax_id_type"], replaced["tax_number"]) == (None, "GB123")
    token = support.create_token(server, account, "write")
    with server.client(token) as c:
        assert c.get(url).status_code == 403
        assert c.put(url, json=VALID).status_code == 403


def test_cli_billing_info_set_and_show(database_url: str, server: support.LiveServer, tmp_path: Path) -> None:
    account = support.create_account(server)
    missing = support.cli(database_url, "billing-info", "show", account, data_dir=tmp_path, check=False)
    assert missing.returncode == 2 and "no billing info" in missing.stderr
    set_ = support.cli(
        database_url,
        "billing-info",
        "set",
        account,
        "--name",
        "Ζήτα Жук",
        "--city",
        "Αθήνα",
        "--country",
        "gr",
        "--tax-id-type",
        "eu_vat",
        "--tax-number",
        "EL123456789",
        data_dir=tmp_path,
    )
    stored = json.loads(set_.stdout)
    assert stored["name"] == "Ζήτα Жук" and stored["address"]["country"] == "GR"
    shown = json.loads(support.cli(database_url, "billing-info", "show", account, data_dir=tmp_path).stdout)
    assert shown == stored
    with server.admin() as c:
        assert c.get(f"/admin/v1/accounts/{account}/billing-info").json() == stored
    bad = support.cli(
        database_url,
        "billing-info",
        "set",
        account,
        "--name",
        "x",
        "--country",
        "Hellas",
        data_dir=tmp_path,
        check=False,
    )
    assert bad.returncode == 2 and "address.country" in bad.stderr
