"""One workflow charges every top-up: a Cloudflare top-up, an xAI top-up, an admin top-up and an
auto top-up all go through `workflows.topup.charge_topup` (on session except auto top-up), and
all charge the default card the xAI API sets."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creditgate.billing.topups import Topup
from creditgate.money import cents
from creditgate.workflows import topup as workflow
from creditgate.workflows.context import Context
from tests import support
from tests.autotopup_support import World, account_with_card, configure, save_card, spend, topups_of, world
from tests.cloudflare_support import billing, sandbox_charges


@pytest.fixture
def w(fresh_database_url: str, tmp_path: Path) -> Iterator[World]:
    with world(fresh_database_url, tmp_path) as live:
        yield live


@pytest.fixture
def charges(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, bool]]:
    """Every call of the one charging function: (account, origin, off_session)."""
    seen: list[tuple[str, str, bool]] = []
    real = workflow.charge_topup

    async def spy(ctx: Context, topup: Topup, *, off_session: bool) -> Topup:
        seen.append((topup.account_id, topup.origin, off_session))
        return await real(ctx, topup, off_session=off_session)

    monkeypatch.setattr(workflow, "charge_topup", spy)
    return seen


def test_cloudflare_admin_and_auto_topups_share_one_charging_function(
    w: World, charges: list[tuple[str, str, bool]]
) -> None:
    account, token = account_with_card(w)
    billing(w.server, token).topup.create(account_id=account, amount=1500)
    assert charges == [(account, "manual", False)]

    with w.server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/topups", json={"amount": 2500})
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    assert (made["status"], made["amount"], made["origin"]) == ("completed", 2500, "manual")
    assert charges[1:] == [(account, "manual", False)]

    configure(w, account, token)  # auto top-up of 1000 below 500 cents
    spend(w, account, cents_each=3700, count=1)  # 4000 - 3700 = 300 < 500: one auto top-up queued
    assert w.run_jobs() == {"auto_topups": 1}
    assert charges[2:] == [(account, "auto", True)]

    assert sandbox_charges(w.url, account) == 3
    assert support.balance_units(w.server, account) == cents(1500 + 2500 - 3700 + 1000)
    assert sorted(t["origin"] for t in topups_of(w, account)) == ["auto", "manual", "manual"]


def test_admin_topup_honours_its_key_validates_and_reports_declines(w: World) -> None:
    account, _ = account_with_card(w)
    path = f"/admin/v1/accounts/{account}/topups"
    with w.server.admin() as c:
        first = c.post(path, json={"amount": 1200}, headers={"Idempotency-Key": "k"})
        again = c.post(path, json={"amount": 1200}, headers={"Idempotency-Key": "k"})
        other = c.post(path, json={"amount": 1200})
        assert first.status_code == again.status_code == other.status_code == 201
        assert first.json()["id"] == again.json()["id"] != other.json()["id"]
        assert c.post(path, json={"amount": 1300}, headers={"Idempotency-Key": "k"}).status_code == 409
        for bad in ({}, {"amount": "12"}, {"amount": 1}, {"amount": 1200, "extra": 1}):
            r = c.post(path, json=bad)
            assert r.status_code == 400, (bad, r.text)
        assert (
            c.post(f"/admin/v1/accounts/{support.new_account_id()}/topups", json={"amount": 1200}).status_code
            == 404
        )
    assert sandbox_charges(w.url, account) == 2

    declined = support.create_account(w.server)
    with w.server.admin() as c:
        assert (
            c.post(f"/admin/v1/accounts/{declined}/cards", json={"card": "4000000000000341"}).status_code
            == 201
        )
        r = c.post(f"/admin/v1/accounts/{declined}/topups", json={"amount": 1200})
    assert r.status_code == 402 and "card_declined" in r.text
    assert support.balance_units(w.server, declined) == 0


def test_cli_topups_create_charges_once_per_purchase_and_once_per_key(w: World, tmp_path: Path) -> None:
    account = support.create_account(w.server)

    def run(*args: str, check: bool = True) -> Any:
        return support.cli(w.url, *args, data_dir=tmp_path, check=check)

    run("cards", "add", account, "4242424242424242")
    made = [json.loads(run("topups", "create", account, "1500").stdout) for _ in range(2)]
    assert made[0]["id"] != made[1]["id"] and {t["status"] for t in made} == {"completed"}
    keyed = [
        json.loads(run("topups", "create", account, "1500", "--idempotency-key", "cli-1").stdout)
        for _ in range(2)
    ]
    assert keyed[0]["id"] == keyed[1]["id"]
    assert run("topups", "create", account, "1", check=False).returncode == 2
    assert sandbox_charges(w.url, account) == 3
    assert support.balance_units(w.server, account) == cents(3 * 1500)


def test_xai_top_up_charges_through_the_same_function_and_the_default_card(
    w: World, charges: list[tuple[str, str, bool]]
) -> None:
    team = str(uuid.uuid4())
    account, token = account_with_card(w, account_id=team)  # visa
    visa = support.query(w.url, "SELECT payment_method_id FROM billing_cards WHERE account_id = :a", a=team)[
        0
    ][0]
    save_card(w, account, "5555555555554444")  # mastercard, now the default
    with w.server.client(token) as c:
        r = c.post(f"/v1/billing/teams/{team}/payment-method/default", json={"paymentMethodId": visa})
        assert (r.status_code, r.text) == (200, "{}")
        r = c.post(f"/v1/billing/teams/{team}/prepaid/top-up", json={"amount": {"val": "-1500"}})
        assert r.status_code == 200, r.text
    assert r.json()["change"]["amount"] == {"val": "-1500"}
    assert charges == [(account, "manual", False)]
    billing(w.server, token).topup.create(account_id=account, amount=1200)  # Cloudflare: the same card
    assert charges[1:] == [(account, "manual", False)]
    configure(w, account, token)  # auto top-up of 1000 below 500 cents
    spend(w, account, cents_each=2500, count=1)  # 2700 - 2500 = 200 < 500
    assert w.run_jobs() == {"auto_topups": 1}
    assert charges[2:] == [(account, "auto", True)]
    charged = support.query(
        w.url, "SELECT origin, payment_method_id FROM topups WHERE account_id = :a", a=team
    )
    assert sorted(charged) == [("auto", visa), ("manual", visa), ("manual", visa)]
    assert sandbox_charges(w.url, account) == 3
    assert support.balance_units(w.server, account) == cents(1500 + 1200 - 2500 + 1000)
