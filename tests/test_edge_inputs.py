"""Edge inputs from a review of main, on SQLite and PostgreSQL: each is a clear 4xx (or, for
the SDK's empty query values, the documented default), never a 500 or a silent misreading."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from creditgate.clock import parse_iso
from creditgate.errors import ValidationError
from creditgate.ids import is_valid_account_id
from creditgate.metering.events import parse_event
from creditgate.money import UNITS_PER_USD, cents, parse_usd
from tests import support
from tests.cloudflare_support import NOW, billing, clocked_server, funded_account, ingest, ms

OUT_OF_RANGE = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_parse_iso_refuses_instants_outside_the_utc_calendar(value: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_iso(value)


def test_parse_iso_still_reads_the_edges_that_fit() -> None:
    assert parse_iso("9999-12-31T23:59:59Z").year == 9999
    assert parse_iso("9999-12-31T23:59:59+01:00").hour == 22


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_a_grant_expiring_outside_the_calendar_is_a_400(
    server: support.LiveServer, database_url: str, value: str
) -> None:
    account = support.create_account(server)
    before = support.snapshot(database_url)
    with server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/grants", json={"amount_cents": 5, "expires_at": value})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == "expires_at" and "out of range" in r.json()["error"]["message"]
    assert support.snapshot(database_url) == before


def test_the_cli_refuses_the_same_expiry_cleanly(server: support.LiveServer) -> None:
    account = support.create_account(server)
    proc = support.cli(
        server.settings.database_url,
        "credits",
        "grant",
        account,
        "5",
        "--expires",
        OUT_OF_RANGE[0],
        check=False,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "out of range" in proc.stderr + proc.stdout
    assert support.balance_units(server, account) == 0


@pytest.mark.parametrize("value", ["zz\n", "zz\r\n", "a" * 64 + "\n", "\nzz"])
def test_account_ids_with_a_trailing_newline_are_invalid(value: str) -> None:
    assert is_valid_account_id(value.strip())
    assert not is_valid_account_id(value)


def test_the_admin_api_refuses_an_account_id_with_a_newline(server: support.LiveServer) -> None:
    base = support.new_account_id()
    with server.admin() as c:
        r = c.post("/admin/v1/accounts", json={"id": base + "\n"})
        assert r.status_code == 400 and r.json()["error"]["field"] == "id", r.text
        r = c.get(f"/admin/v1/accounts/{base}")
        assert r.status_code == 404, r.text
        assert c.post("/admin/v1/accounts", json={"id": base}).status_code == 201


def test_usage_history_treats_empty_times_as_absent(database_url: str, tmp_path: Path) -> None:
    """The official TypeScript SDK sends `start_time=&end_time=` for null values."""
    with clocked_server(database_url, tmp_path) as (server, _clock):
        account, token = funded_account(server)
        ingest(server, account, [{"id": "e1", "timestamp": ms(NOW), "cost_usd": "0.25"}])
        path = f"/client/v4/accounts/{account}/ai-gateway/billing/usage-history"
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
            absent = c.get(f"{path}?value_grouping_window=day")
            assert absent.status_code == 200 and absent.json()["result"]["history"], absent.text
            for query in ("start_time=&end_time=", "start_time=", "end_time=", "start_time=%20&end_time="):
                r = c.get(f"{path}?value_grouping_window=day&{query}")
                assert r.status_code == 200, (query, r.text)
                assert r.json() == absent.json(), query
            r = c.get(f"{path}?value_grouping_window=day&start_time=abc")
            assert r.status_code == 400 and r.json()["errors"][0]["source"] == {"pointer": "/start_time"}


def test_an_invoice_link_with_a_repeated_key_is_refused(server: support.LiveServer) -> None:
    account, token = funded_account(server)
    b = billing(server, token)
    b.topup.create(account_id=account, amount=1000)
    (invoice,) = b.invoice_history(account_id=account).invoices
    base, key = invoice.invoice_pdf.split("?key=")
    assert httpx.get(invoice.invoice_pdf).status_code == 200
    for url in (f"{base}?key=x&key={key}", f"{base}?key={key}&key={key}", f"{base}?key={key}&key=x"):
        r = httpx.get(url)
        assert r.status_code == 400, (url, r.text)
        assert r.json()["error"]["field"] == "key" and r.headers["content-type"] == "application/json"


SPACED = [" 1", "1 ", "\t0.5", "0.5\n", " "]


@pytest.mark.parametrize("cost", SPACED)
def test_cost_usd_must_be_the_plain_decimal_alone(cost: str) -> None:
    raw = {
        "id": "e",
        "account_id": "acct",
        "model": "m",
        "input_tokens": 1,
        "output_tokens": 1,
        "cost_usd": cost,
    }
    with pytest.raises(ValidationError) as caught:
        parse_event(raw, NOW)
    assert caught.value.field == "cost_usd"
    assert parse_usd(cost.strip() or "0") >= 0  # price files still allow surrounding space
    with pytest.raises(ValueError):
        parse_usd(cost, strip=False)


def test_a_spaced_cost_usd_is_rejected_alone_over_http(server: support.LiveServer, database_url: str) -> None:
    account = support.create_account(server)
    support.grant(server, account, 500)
    event = {
        "account_id": account,
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 1,
        "output_tokens": 1,
    }
    with server.admin() as c:
        r = c.post("/v1/gateway/usage", json={"events": [{**event, "id": "spaced", "cost_usd": " 1"}]})
        assert r.status_code == 422, r.text
        assert r.json()["rejected"] == [
            {"index": 0, "error": r.json()["rejected"][0]["error"], "field": "cost_usd"}
        ]
        r = c.post("/v1/gateway/usage", json={"events": [{**event, "id": "plain", "cost_usd": "1"}]})
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    assert support.balance_units(server, account) == cents(500) - UNITS_PER_USD


def test_a_spaced_estimated_cost_usd_is_a_400_on_authorize(server: support.LiveServer) -> None:
    account = support.create_account(server)
    support.grant(server, account, 100)
    body = {"account_id": account, "request_id": "spaced", "model": "gpt-4o", "estimated_cost_usd": " 0.01"}
    with server.admin() as c:
        r = c.post("/v1/gateway/authorize", json=body)
        assert r.status_code == 400 and r.json()["error"]["field"] == "estimated_cost_usd", r.text
        r = c.post("/v1/gateway/authorize", json={**body, "estimated_cost_usd": "0.01"})
        assert r.status_code == 200 and r.json()["allowed"] is True, r.text
