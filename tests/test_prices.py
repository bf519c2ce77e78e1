"""The price catalog: effective-dated integer rates; past usage is never repriced; JSON and
CSV imports are all-or-nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from creditgate.clock import to_ms
from creditgate.metering.catalog import parse_price_file, parse_price_rows
from creditgate.money import parse_usd, usage_cost
from tests import support

USAGE = "/v1/gateway/usage"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 3, 1, tzinfo=UTC)
T_MID = datetime(2026, 2, 1, tzinfo=UTC)


def _price(model: str, when: datetime, inp: str, out: str, **extra: str) -> dict[str, str]:
    return {
        "provider": "acme",
        "model": model,
        "effective_from": when.isoformat().replace("+00:00", "Z"),
        "input_per_mtok_usd": inp,
        "output_per_mtok_usd": out,
        **extra,
    }


def _event(account: str, event_id: str, model: str, at: datetime, **extra: object) -> dict[str, object]:
    return {
        "id": event_id,
        "account_id": account,
        "model": model,
        "input_tokens": 1000,
        "output_tokens": 100,
        "timestamp": to_ms(at),
        **extra,
    }


def _cost(inp: str, out: str, fee: str = "0") -> int:
    return usage_cost(1000, 100, 0, parse_usd(inp), parse_usd(out), parse_usd(inp), parse_usd(fee))


def test_price_change_applies_from_its_timestamp(server: support.LiveServer, database_url: str) -> None:
    model = f"m-{uuid.uuid4().hex[:8]}"
    account = support.create_account(server)
    with server.admin() as c:
        r = c.post(
            "/admin/v1/prices",
            json={
                "prices": [
                    _price(model, T0, "1.00", "2.00"),
                    _price(model, T1, "3.00", "4.00", request_fee_usd="0.01"),
                ]
            },
        )
        assert r.status_code == 201 and r.json() == {"inserted": 2, "unchanged": 0}
        r = c.post(
            USAGE,
            json={
                "events": [
                    _event(account, "before", model, datetime(2025, 12, 31, 23, 59, tzinfo=UTC)),
                    _event(account, "at-t0", model, T0),
                    _event(account, "mid", model, T_MID),
                    _event(
                        account,
                        "just-before-t1",
                        model,
                        datetime(2026, 2, 28, 23, 59, 59, 999000, tzinfo=UTC),
                    ),
                    _event(account, "at-t1", model, T1),
                ]
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
    assert body["accepted"] == 4
    assert body["rejected"] == [{"index": 0, "error": body["rejected"][0]["error"], "field": "timestamp"}]
    costs = dict(
        support.query(
            database_url, "SELECT event_id, cost FROM usage_events WHERE account_id = :a", a=account
        )
    )
    old, new = _cost("1.00", "2.00"), _cost("3.00", "4.00", "0.01")
    assert costs == {"at-t0": old, "mid": old, "just-before-t1": old, "at-t1": new}
    assert support.balance_units(server, account) == -(3 * old + new)


def test_past_usage_is_never_repriced(server: support.LiveServer, database_url: str) -> None:
    model = f"m-{uuid.uuid4().hex[:8]}"
    account = support.create_account(server)
    with server.admin() as c:
        assert (
            c.post("/admin/v1/prices", json={"prices": [_price(model, T0, "1.00", "2.00")]}).status_code
            == 201
        )
        assert c.post(USAGE, json={"events": [_event(account, "e1", model, T_MID)]}).json()["accepted"] == 1
        balance = support.balance_units(server, account)
        # a new price effective BEFORE the stored event: the stored event keeps its price
        r = c.post(
            "/admin/v1/prices", json={"prices": [_price(model, datetime(2026, 1, 15, tzinfo=UTC), "9", "9")]}
        )
        assert r.status_code == 201
        assert support.balance_units(server, account) == balance
        assert c.post(USAGE, json={"events": [_event(account, "e1", model, T_MID)]}).json()["duplicates"] == 1
        assert c.post(USAGE, json={"events": [_event(account, "e2", model, T_MID)]}).json()["accepted"] == 1
    costs = dict(
        support.query(
            database_url, "SELECT event_id, cost FROM usage_events WHERE account_id = :a", a=account
        )
    )
    assert costs == {"e1": _cost("1.00", "2.00"), "e2": _cost("9", "9")}
    assert support.balance_units(server, account) == balance - _cost("9", "9")


def test_cost_usd_overrides_the_catalog(server: support.LiveServer) -> None:
    account = support.create_account(server)
    with server.admin() as c:
        r = c.post(
            USAGE,
            json={
                "events": [
                    _event(account, "own", "gpt-4o", T_MID, cost_usd="0.000000007"),
                    _event(account, "unpriced", "private-model", T_MID, cost_usd="1.5"),
                ]
            },
        )
        assert r.json()["accepted"] == 2
    assert support.balance_units(server, account) == -(7 + 1_500_000_000)


def test_conflicting_reimport_is_rejected_and_writes_nothing(
    server: support.LiveServer, database_url: str
) -> None:
    model = f"m-{uuid.uuid4().hex[:8]}"
    with server.admin() as c:
        first = [_price(model, T0, "1.00", "2.00")]
        assert c.post("/admin/v1/prices", json={"prices": first}).status_code == 201
        r = c.post("/admin/v1/prices", json={"prices": first})  # identical: nothing new
        assert r.status_code == 200 and r.json() == {"inserted": 0, "unchanged": 1}
        before = support.snapshot(database_url)
        changed = [_price(model, T1, "5", "5"), _price(model, T0, "1.00", "2.01")]
        r = c.post("/admin/v1/prices", json={"prices": changed})
        assert r.status_code == 409 and "immutable" in r.json()["error"]["message"]
        r = c.post(
            "/admin/v1/prices", json={"prices": [_price(model, T1, "5", "5"), _price(model, T1, "5", "5")]}
        )
        assert r.status_code == 409
        r = c.post("/admin/v1/prices", json={"prices": [_price(model, T1, "5", "5"), {"model": model}]})
        assert r.status_code == 400 and r.json()["error"]["field"].startswith("prices[1]")
        assert support.snapshot(database_url) == before
        listed = [p for p in c.get("/admin/v1/prices").json()["prices"] if p["model"] == model]
    assert listed == [
        {
            "id": listed[0]["id"],
            "provider": "acme",
            "model": model,
            "effective_from": "2026-01-01T00:00:00+00:00",
            "input_per_mtok_usd": "1.00",
            "output_per_mtok_usd": "2.00",
            "cached_input_per_mtok_usd": "1.00",
            "request_fee_usd": "0.00",
        }
    ]


def test_cli_imports_json_and_csv(server: support.LiveServer, database_url: str, tmp_path: Path) -> None:
    model_json, model_csv = f"j-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"
    json_file = tmp_path / "prices.json"
    json_file.write_text(
        json.dumps({"prices": [_price(model_json, T0, "0.50", "1.50", cached_input_per_mtok_usd="0.05")]})
    )
    csv_file = tmp_path / "prices.csv"
    csv_file.write_text(
        "provider,model,effective_from,input_per_mtok_usd,output_per_mtok_usd,cached_input_per_mtok_usd,request_fee_usd\n"
        f"acme,{model_csv},2026-01-01T00:00:00Z,0.25,0.75,,\n"
        f"acme,{model_csv},2026-03-01T00:00:00+01:00,0.30,0.80,0.10,0.001\n"
    )
    out = json.loads(support.cli(database_url, "prices", "import", str(json_file), data_dir=tmp_path).stdout)
    assert out == {"inserted": 1, "unchanged": 0}
    out = json.loads(support.cli(database_url, "prices", "import", str(csv_file), data_dir=tmp_path).stdout)
    assert out == {"inserted": 2, "unchanged": 0}
    out = json.loads(support.cli(database_url, "prices", "import", str(csv_file), data_dir=tmp_path).stdout)
    assert out == {"inserted": 0, "unchanged": 2}
    before = support.snapshot(database_url)
    csv_file.write_text(csv_file.read_text().replace("0.80", "0.81"))
    proc = support.cli(database_url, "prices", "import", str(csv_file), data_dir=tmp_path, check=False)
    assert proc.returncode == 2 and "immutable" in proc.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("provider,model,input_per_mtok_usd,output_per_mtok_usd\nacme,x,1e3,1\n")
    proc = support.cli(database_url, "prices", "import", str(bad), data_dir=tmp_path, check=False)
    assert proc.returncode == 2 and "input_per_mtok_usd" in proc.stderr
    assert support.snapshot(database_url) == before
    listed = json.loads(support.cli(database_url, "prices", "list", data_dir=tmp_path).stdout)
    mine = [p for p in listed if p["model"] in (model_json, model_csv)]
    assert [
        (p["model"], p["effective_from"], p["cached_input_per_mtok_usd"], p["request_fee_usd"]) for p in mine
    ] == [
        (model_csv, "2026-01-01T00:00:00+00:00", "0.25", "0.00"),
        (model_csv, "2026-02-28T23:00:00+00:00", "0.10", "0.001"),
        (model_json, "2026-01-01T00:00:00+00:00", "0.05", "0.00"),
    ]
    account = support.create_account(server)
    with server.admin() as c:
        r = c.post(USAGE, json={"events": [_event(account, "csv", model_csv, T1, cached_tokens=500)]})
        assert r.json()["accepted"] == 1, r.text
    expected = usage_cost(
        1000, 100, 500, parse_usd("0.30"), parse_usd("0.80"), parse_usd("0.10"), parse_usd("0.001")
    )
    assert support.balance_units(server, account) == -expected


def test_default_catalog_is_seeded(server: support.LiveServer) -> None:
    with server.admin() as c:
        prices = c.get("/admin/v1/prices").json()["prices"]
    gpt4o = [p for p in prices if (p["provider"], p["model"]) == ("openai", "gpt-4o")]
    assert gpt4o[0]["effective_from"] == "2025-06-01T00:00:00+00:00"
    assert gpt4o[0]["input_per_mtok_usd"] == "2.50" and gpt4o[0]["output_per_mtok_usd"] == "10.00"
    assert len({(p["provider"], p["model"]) for p in prices}) >= 5


def test_parse_rows_validation() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rows = parse_price_rows(
        parse_price_file(
            '[{"provider":"a","model":"b","input_per_mtok_usd":2,"output_per_mtok_usd":"0.5"}]', "x.json"
        ),
        now,
    )
    assert rows[0]["input_rate"] == 2 * 10**9 and rows[0]["effective_from"] == now
    for bad in (
        '{"provider":"a","model":"b","input_per_mtok_usd":"-1","output_per_mtok_usd":"1"}',
        '{"provider":"a","model":"b","input_per_mtok_usd":true,"output_per_mtok_usd":"1"}',
        '{"provider":"a","model":"b","input_per_mtok_usd":"1","output_per_mtok_usd":"99999999"}',
        '{"provider":"a","model":"b","input_per_mtok_usd":"1","output_per_mtok_usd":"1","effective_from":5}',
        '{"provider":"a","model":"b","input_per_mtok_usd":"1","output_per_mtok_usd":"1",'
        '"effective_from":"2026-01-01T00:00:00"}',
        '{"provider":"","model":"b","input_per_mtok_usd":"1","output_per_mtok_usd":"1"}',
    ):
        try:
            parse_price_rows(parse_price_file(f"[{bad}]", "x.json"), now)
        except Exception as exc:
            assert type(exc).__name__ == "ValidationError", bad
        else:
            raise AssertionError(f"accepted {bad}")
