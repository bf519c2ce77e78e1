"""Refunds of top-ups through the admin API and the CLI, with the sandbox processor, on SQLite
and PostgreSQL: credits reversed once, partial refunds, repeats harmless, bad input rejected
without changes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cloudflare
import orjson
import pytest

from creditgate.money import cents
from tests import support
from tests.autotopup_support import World, account_with_card, topups_of, world
from tests.cloudflare_support import billing


@pytest.fixture
def w(fresh_database_url: str, tmp_path: Path) -> Iterator[World]:
    with world(fresh_database_url, tmp_path) as live:
        yield live


def _paid_topup(w: World, amount: int = 5000) -> tuple[str, str]:
    account, token = account_with_card(w)
    billing(w.server, token).topup.create(account_id=account, amount=amount)
    [topup] = topups_of(w, account)
    assert topup["status"] == "completed"
    return account, topup["id"]


def _refund(w: World, account: str, topup_id: str, body: dict[str, object] | None = None, **headers: str):  # type: ignore[no-untyped-def]
    with w.server.admin() as c:
        url = f"/admin/v1/accounts/{account}/topups/{topup_id}/refund"
        return c.post(url, json=body, headers=headers) if body is not None else c.post(url, headers=headers)


def _refund_entries(w: World, account: str) -> list[dict[str, object]]:
    with w.server.admin() as c:
        entries = c.get(f"/admin/v1/accounts/{account}/ledger").json()["entries"]
    return [e for e in entries if e["kind"] == "refund"]


def test_full_refund_reverses_the_credit_once(w: World) -> None:
    account, topup_id = _paid_topup(w)
    first = _refund(w, account, topup_id)
    assert first.status_code == 200, first.text
    refund = first.json()["refund"]
    assert (refund["amount"], refund["status"]) == (5000, "succeeded")
    assert refund["processor_refund_id"].startswith("re_sbx")
    assert support.balance_units(w.server, account) == 0
    again = _refund(w, account, topup_id)  # nothing left: a repeat changes nothing
    assert again.status_code == 200 and again.json()["refund"] is None
    assert again.json()["topup"]["refunded"] == 5000 and again.json()["topup"]["refundable"] == 0
    [entry] = _refund_entries(w, account)
    assert entry["ref"] == f"refund:{refund['processor_refund_id']}"
    assert support.balance_units(w.server, account) == 0
    with w.server.admin() as c:
        assert c.get("/admin/v1/reconcile").json()["ok"] is True


def test_partial_refunds_idempotency_key_and_limits(w: World) -> None:
    account, topup_id = _paid_topup(w)
    one = _refund(w, account, topup_id, {"amount": 1500, "reason": "goodwill"}, **{"Idempotency-Key": "r-1"})
    replay = _refund(
        w, account, topup_id, {"amount": 1500, "reason": "goodwill"}, **{"Idempotency-Key": "r-1"}
    )
    assert one.status_code == replay.status_code == 200
    assert one.json()["refund"]["id"] == replay.json()["refund"]["id"]
    assert support.balance_units(w.server, account) == cents(3500)
    too_much = _refund(w, account, topup_id, {"amount": 3501})
    assert too_much.status_code == 400 and too_much.json()["error"]["field"] == "amount"
    for bad in ({"amount": 0}, {"amount": "10"}, {"amount": True}, {"nope": 1}):
        r = _refund(w, account, topup_id, bad)
        assert r.status_code == 400, (bad, r.text)
    with w.server.admin() as c:
        junk = c.post(f"/admin/v1/accounts/{account}/topups/{topup_id}/refund", content=b"{not json")
        assert junk.status_code == 400
        assert c.post(f"/admin/v1/accounts/{account}/topups/tu_nope/refund").status_code == 404
        other = support.create_account(w.server)
        assert c.post(f"/admin/v1/accounts/{other}/topups/{topup_id}/refund").status_code == 404
    rest = _refund(w, account, topup_id)
    assert rest.json()["refund"]["amount"] == 3500
    assert support.balance_units(w.server, account) == 0
    assert [e["amount_usd"] for e in _refund_entries(w, account)] == ["-35.00", "-15.00"]


def test_a_failed_topup_cannot_be_refunded(w: World) -> None:
    account, token = account_with_card(w, "4000000000000341")
    with pytest.raises(cloudflare.APIStatusError):  # the SDK's 402
        billing(w.server, token).topup.create(account_id=account, amount=2000)
    [failed] = topups_of(w, account)
    r = _refund(w, account, failed["id"])
    assert r.status_code == 409, r.text


def test_cli_refunds_a_topup(w: World) -> None:
    account, topup_id = _paid_topup(w, amount=2000)
    env = {
        **os.environ,
        "CREDITGATE_DATABASE_URL": w.url,
        "CREDITGATE_DATA_DIR": str(w.server.settings.data_dir),
        "CREDITGATE_PAYMENTS": "sandbox",
    }
    cli = [str(Path(sys.executable).with_name("creditgate"))]
    out = subprocess.run(
        [*cli, "topups", "refund", account, topup_id, "--amount-cents", "500"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout)["refund"]["amount"] == 500
    listed = subprocess.run(
        [*cli, "topups", "list", account], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    assert orjson.loads(listed.stdout)[0]["refunded"] == 500
    assert support.balance_units(w.server, account) == cents(1500)
