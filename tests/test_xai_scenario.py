"""Issue 10's scenario on SQLite and PostgreSQL over a live server with a manual clock: a team
tops up $50 through the xAI API, spends across three models, and every view (xAI balance and
changes, invoice preview, usage analytics, the Cloudflare API) agrees with the ledger to the cent;
it then goes postpaid with a soft limit, spends exactly up to it, is refused the next call, and
the month closes into one SPEND change and one monthly invoice carrying its billing info."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from creditgate.money import cents, parse_usd, to_cents_number
from tests import support
from tests.autotopup_support import World, save_card, world
from tests.cloudflare_support import billing, pdf_text
from tests.limits_support import authorize, settle
from tests.test_xai_usage import stored
from tests.xai_support import Team, ingest, new_team

JUNE, JULY = datetime(2030, 6, 1, tzinfo=UTC), datetime(2030, 7, 1, tzinfo=UTC)
USAGE = [  # three models; odd token counts so that costs are not whole cents
    {"id": "g1", "model": "gpt-4o", "provider": "openai", "input_tokens": 1_200_000,
     "cached_tokens": 200_000, "output_tokens": 300_000},  # $5.75
    {"id": "c1", "model": "claude-sonnet-4", "provider": "anthropic", "input_tokens": 900_001,
     "output_tokens": 120_003},  # $4.500048
    {"id": "m1", "model": "gpt-4o-mini", "provider": "openai", "input_tokens": 5_000_000,
     "output_tokens": 2_000_000},  # $1.95
]  # fmt: skip
BILL_TO = {
    "name": "Scenario Labs GmbH",
    "address": {"line1": "Torstraße 1", "city": "Berlin", "country": "DE", "postalCode": "10119"},
    "email": "billing@scenario.example",
    "taxIdType": "eu_vat",
    "taxNumber": "DE123456789",
}


@pytest.fixture
def w(fresh_database_url: str, tmp_path: Path) -> Iterator[World]:
    with world(fresh_database_url, tmp_path) as live:
        yield live


def _xai(w: World, team: Team, tail: str, body: dict[str, Any] | None = None) -> Any:
    with w.server.client(team.write if body is not None else team.read) as c:
        r = c.post(team.path(tail), json=body) if body is not None else c.get(team.path(tail))
    assert r.status_code == 200, r.text
    return r.json()


def _ledger_units(w: World, team: Team, kind: str | None = None) -> int:
    with w.server.admin() as c:
        r = c.get(f"/admin/v1/accounts/{team.id}/ledger", params={"limit": 500})
    assert r.status_code == 200, r.text
    return sum(parse_usd(e["amount_usd"]) for e in r.json()["entries"] if kind in (None, e["kind"]))


def _to_cents(units: int) -> int:
    """Ledger units to whole cents, half away from zero (the xAI views' rounding)."""
    sign = -1 if units < 0 else 1
    return sign * ((abs(units) + cents(1) // 2) // cents(1))


def _analytics_by_model(w: World, team: Team) -> dict[str, float]:
    body = _xai(
        w,
        team,
        "usage",
        {
            "analyticsRequest": {
                "timeRange": {
                    "startTime": "2030-06-01 00:00:00",
                    "endTime": "2030-07-01 00:00:00",
                    "timezone": "",
                },
                "timeUnit": "TIME_UNIT_NONE",
                "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
                "groupBy": ["description"],
                "filters": [],
            }
        },
    )
    assert body["limitReached"] is False
    return {s["group"][0]: s["dataPoints"][0]["values"][0] for s in body["timeSeries"]}


def _stored_cost_by_model(w: World, team: Team) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for at, _provider, model, *_tokens, cost in stored(w.server, team):
        if JUNE <= at < JULY:
            sums[model] += cost
    return dict(sums)


def _assert_views_agree_with_the_ledger(w: World, team: Team) -> None:
    balance = support.balance_units(w.server, team.id)
    assert _ledger_units(w, team) == balance  # the balance is the sum of its entries
    usage = -_ledger_units(w, team, "usage")
    by_model = _stored_cost_by_model(w, team)
    assert sum(by_model.values()) == usage  # every stored event was debited once
    # xAI prepaid balance: available credit, negative (positive when owed); its changes add up to
    # the prepaid part (what is owed on account is not a prepaid change: docs/xai.md)
    prepaid = _xai(w, team, "prepaid/balance")
    total = _to_cents(-balance)
    assert prepaid["total"] == {"val": str(total)}
    assert sum(int(c["amount"]["val"]) for c in prepaid["changes"]) == min(total, 0)
    # the preview's total is the month's ledger usage to the cent, lines plus correction
    core = _xai(w, team, "postpaid/invoice/preview")["coreInvoice"]
    assert core["totalWithCorr"] == {"val": str(_to_cents(usage))}
    assert sum(int(line["amount"]) for line in core["lines"]) == _to_cents(usage)
    # analytics: dollars per model, from the same exact units
    analytics = _analytics_by_model(w, team)
    assert set(analytics) == set(by_model)
    for model, units in by_model.items():
        assert analytics[model] == pytest.approx(units / 10**9, abs=1e-9)
    # the Cloudflare API's view of the same account
    cloudflare = billing(w.server, team.read)
    assert cloudflare.credit_balance(account_id=team.id).balance == to_cents_number(balance)


def test_prepaid_then_postpaid_to_the_limit_then_the_month_closes(w: World) -> None:
    # a postpaid-capable team with no allowance yet: prepaid only
    team = new_team(w.server, mode="postpaid")
    card = save_card(w, team.id, "4242424242424242")["payment_method_id"]
    assert _xai(w, team, "billing-info", {"billingInfo": BILL_TO}) == {}

    # 1. top up $50 through the xAI API, spend across three models
    change = _xai(w, team, "prepaid/top-up", {"amount": {"val": "5000"}})["change"]
    assert (change["changeOrigin"], change["topupStatus"], change["amount"]) == (
        "PURCHASE",
        "SUCCEEDED",
        {"val": "-5000"},
    )
    ingest(w.server, team.id, USAGE)
    spent = parse_usd("5.75") + parse_usd("4.500048") + parse_usd("1.95")
    assert support.balance_units(w.server, team.id) == cents(5000) - spent
    _assert_views_agree_with_the_ledger(w, team)
    assert set(_analytics_by_model(w, team)) == {"gpt-4o", "claude-sonnet-4", "gpt-4o-mini"}

    # 2. postpaid: the operator's ceiling $100, the customer's soft limit $25
    with w.server.admin() as c:
        r = c.put(f"/admin/v1/accounts/{team.id}/postpaid-limit", json={"hard_limit_cents": 10_000})
        assert r.status_code == 200, r.text
    _xai(w, team, "postpaid/spending-limits", {"desiredSoftSpendingLimit": {"val": "2500"}})
    limits = _xai(w, team, "postpaid/spending-limits")["spendingLimits"]
    assert (limits["hardSlAuto"], limits["softSl"], limits["effectiveSl"]) == (
        {"val": "10000"},
        {"val": "2500"},
        {"val": "2500"},
    )
    room = cents(5000) - spent + cents(2500)  # the rest of the credit, then the soft limit
    room_usd, past_usd = (f"{u // 10**9}.{u % 10**9:09d}" for u in (room, room + 1))
    with w.server.admin() as c:
        assert authorize(c, team.id, "too-much", estimate=past_usd)["allowed"] is False
        hold = authorize(c, team.id, "exactly", estimate=room_usd)
        assert hold["allowed"] is True
        settle(c, hold["hold_id"], cost=room_usd)
        assert authorize(c, team.id, "next", estimate="0.01") == {
            "allowed": False,
            "reason": "insufficient_credit",
        }
    assert support.balance_units(w.server, team.id) == -cents(2500)  # exactly the soft limit owed
    _assert_views_agree_with_the_ledger(w, team)
    preview = _xai(w, team, "postpaid/invoice/preview")
    assert preview["effectiveSpendingLimit"] == "2500"
    assert preview["billingCycle"] == {"year": 2030, "month": 6}
    core = preview["coreInvoice"]
    assert core["totalWithCorr"] == {"val": "7500"}  # $50 of credit and $25 on account
    assert core["prepaidCreditsUsed"] == {"val": "-5000"} and core["amountAfterVat"] == "2500"

    # 3. the month closes: one SPEND change (the prepaid part), one monthly invoice, charged
    w.advance(days=16, hours=1)  # 2030-07-01 13:00
    assert w.run_jobs("apply_usage", "close_periods")["close_periods"] == 1
    w.advance(days=1)
    assert w.run_jobs("close_periods")["close_periods"] == 0  # closed once
    spends = [c for c in _xai(w, team, "prepaid/balance")["changes"] if c["changeOrigin"] == "SPEND"]
    assert [(c["spendBpKeyYear"], c["spendBpKeyMonth"], c["amount"]) for c in spends] == [
        (2030, 6, {"val": "5000"})
    ]
    monthly = [i for i in _xai(w, team, "invoices")["invoices"] if "monthly" in i]
    assert len(monthly) == 1
    [invoice] = monthly
    assert invoice["monthly"]["billingCycle"] == {"year": 2030, "month": 6}
    assert invoice["invoiceStatus"] == "PAID" and invoice["total"] == "2500"
    assert invoice["chargerAttempts"] == [{"ticket": 0, "successful": True, "paymentMethodId": card}]
    text = pdf_text(f"{w.server.base_url}/{invoice['invoicePdfAssetKeySuffix']}")
    assert "Scenario Labs GmbH" in text and "Berlin" in text and "DE123456789" in text
    assert support.balance_units(w.server, team.id) == 0  # the card paid what was owed
    assert _ledger_units(w, team) == 0
