"""The xAI billing cycle on SQLite and PostgreSQL over a live server: the postpaid invoice
preview (exact body, the correction line to the ledger), and the cycle close in the statement
job with a manual clock (one SPEND change for the prepaid part, one monthly invoice for the
postpaid part, charged to the default card with recorded attempts, idempotent re-runs and two
concurrent workers)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creditgate import jobs
from creditgate.db import Database
from creditgate.money import parse_usd
from tests import support
from tests.autotopup_support import World, save_card, world
from tests.cloudflare_support import pdf_text
from tests.xai_support import Team, ingest, new_team

GPT = {"model": "gpt-4o", "provider": "openai", "input_tokens": 100_000, "cached_tokens": 20_000}
CORRECTION = "Correction (rounding, usage posted in another cycle)"
GOOD_CARD, DECLINING_CARD = "4242424242424242", "4000000000000341"


@pytest.fixture
def w(fresh_database_url: str, tmp_path: Path) -> Iterator[World]:
    with world(fresh_database_url, tmp_path, tax_rate_bps=2000) as live:
        yield live


def _get(w: World, team: Team, tail: str, **params: Any) -> Any:
    with w.server.client(team.read) as c:
        r = c.get(team.path(tail), params=params)
        assert r.status_code == 200, r.text
        return r


def _line(cluster: str, model: str, unit: str, price: int, units: int, cents: int) -> dict[str, str]:
    return {
        "clusterName": cluster,
        "description": model,
        "unitType": unit,
        "unitPrice": str(price),
        "numUnits": str(units),
        "amount": str(cents),
    }


def _ledger(w: World, team: Team, kind: str) -> list[int]:
    with w.server.admin() as c:
        entries = c.get(f"/admin/v1/accounts/{team.id}/ledger").json()["entries"]
    return [parse_usd(e["amount_usd"]) for e in entries if e["kind"] == kind]


def _postpaid_team(w: World, card: str | None = GOOD_CARD) -> tuple[Team, str | None]:
    """A postpaid team ($200 hard limit) with $1.00 of prepaid credit and $2.90 of June usage."""
    team = new_team(w.server, mode="postpaid", postpaid_limit_cents=20_000)
    pm = save_card(w, team.id, card)["payment_method_id"] if card else None
    support.grant(w.server, team.id, 100)
    ingest(w.server, team.id, [{"id": f"u{i}", "output_tokens": 50_000, **GPT} for i in range(4)])
    return team, pm


def test_the_preview_is_the_cycle_so_far_with_a_correction_to_the_ledger(w: World) -> None:
    team = new_team(w.server, mode="postpaid", postpaid_limit_cents=20_000)
    support.grant(w.server, team.id, 100)
    ingest(w.server, team.id, [{"id": f"u{i}", "output_tokens": 50_000, **GPT} for i in range(4)])
    claude = {"model": "claude-sonnet-4", "provider": "anthropic", "input_tokens": 1001, "output_tokens": 333}
    ingest(w.server, team.id, [{"id": "odd", **claude}])
    # usage $2.907998: $1.00 from credit, $1.907998 postpaid (191 cents, of which 20% VAT: 32)
    expected = {
        "coreInvoice": {
            "lines": [
                _line("anthropic", "claude-sonnet-4", "Prompt text tokens", 30_000, 1001, 0),
                _line("anthropic", "claude-sonnet-4", "Completion text tokens", 150_000, 333, 0),
                _line("openai", "gpt-4o", "Prompt text tokens", 25_000, 320_000, 80),
                _line("openai", "gpt-4o", "Cached prompt text tokens", 12_500, 80_000, 10),
                _line("openai", "gpt-4o", "Completion text tokens", 100_000, 200_000, 200),
                _line("", CORRECTION, "", 0, 0, 1),
            ],
            "amountBeforeVat": "159",
            "vatCost": "32",
            "amountAfterVat": "191",
            "autoCreditsIssued": "0",
            "defaultCreditsIssued": "0",
            "totalWithCorr": {"val": "291"},
            "prepaidCredits": {"val": "-100"},
            "prepaidCreditsUsed": {"val": "-100"},
        },
        "effectiveSpendingLimit": "20000",
        "defaultCredits": "0",
        "billingCycle": {"year": 2030, "month": 6},
    }
    assert _get(w, team, "postpaid/invoice/preview").text == json.dumps(expected, separators=(",", ":"))
    assert round(-sum(_ledger(w, team, "usage")) / 10**7) == 291


def test_a_prepaid_team_previews_its_credit_and_nothing_owed(w: World) -> None:
    team = new_team(w.server)
    empty = _get(w, team, "postpaid/invoice/preview").json()
    assert empty["coreInvoice"]["lines"] == [] and empty["effectiveSpendingLimit"] == "0"
    assert empty["coreInvoice"]["totalWithCorr"] == empty["coreInvoice"]["prepaidCredits"] == {"val": "0"}
    support.grant(w.server, team.id, 4500)
    ingest(w.server, team.id, [{"id": "p", "output_tokens": 50_000, **GPT}])  # $0.725
    core = _get(w, team, "postpaid/invoice/preview").json()["coreInvoice"]
    assert (core["totalWithCorr"], core["prepaidCredits"], core["prepaidCreditsUsed"]) == (
        {"val": "73"},
        {"val": "-4500"},  # 73 used + 4427 left (rounded from $44.275)
        {"val": "-73"},
    )
    assert (core["amountBeforeVat"], core["vatCost"], core["amountAfterVat"]) == ("0", "0", "0")
    assert [line["amount"] for line in core["lines"]] == ["20", "3", "50"]  # 73 with no correction


def _charged(w: World, team: Team) -> int:
    [[count]] = support.query(
        w.url,
        "SELECT count(*) FROM sandbox_payments p JOIN billing_profiles b ON b.customer_id = p.customer_id "
        "WHERE b.account_id = :a",
        a=team.id,
    )
    return int(count)


def _spends(w: World, team: Team) -> list[Any]:
    changes = _get(w, team, "prepaid/balance").json()["changes"]
    return [
        (c["spendBpKeyYear"], c["spendBpKeyMonth"], c["amount"])
        for c in changes
        if c["changeOrigin"] == "SPEND"
    ]


def test_closing_the_month_spends_the_prepaid_part_and_charges_the_postpaid_invoice(w: World) -> None:
    team, _ = _postpaid_team(w)
    with w.server.admin() as c:
        info = {"name": "Müller GmbH", "address": {"city": "Berlin", "country": "DE"}}
        r = c.put(f"/admin/v1/accounts/{team.id}/billing-info", json=info)
        assert r.status_code == 200, r.text
    pm = _get(w, team, "payment-method").json()["paymentMethods"][0]["paymentMethodId"]
    assert _spends(w, team) == [(2030, 6, {"val": "100"})]  # live: the prepaid part so far
    w.advance(days=16, hours=1)  # 2030-07-01 13:00
    assert w.run_jobs("close_periods")["close_periods"] == 1
    [invoice] = _get(w, team, "invoices").json()["invoices"]
    assert invoice["invoiceStatus"] == "PAID"
    assert invoice["chargerAttempts"] == [{"ticket": 0, "successful": True, "paymentMethodId": pm}]
    assert invoice["firstDesiredNextCycleTs"] == invoice["createTime"]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("158", "32", "190")  # 20% included
    assert sum(int(line["amount"]) for line in invoice["lines"]) == 290
    assert invoice["monthly"]["billingCycle"] == {"year": 2030, "month": 6}
    assert _spends(w, team) == [(2030, 6, {"val": "100"})]  # one SPEND change: the prepaid part
    assert _ledger(w, team, "payment") == [190 * 10**7]  # the card payment restores the balance
    assert _get(w, team, "prepaid/balance").json()["total"] == {"val": "0"}
    text = pdf_text(f"{w.server.base_url}/{invoice['invoicePdfAssetKeySuffix']}")
    assert "BILL TO" in text and "Müller GmbH" in text and "Berlin" in text

    # the new cycle starts empty; re-runs charge nothing and issue nothing
    july = _get(w, team, "postpaid/invoice/preview").json()
    assert july["billingCycle"] == {"year": 2030, "month": 7} and july["coreInvoice"]["lines"] == []
    for _ in range(2):
        w.advance(days=1)
        assert w.run_jobs("close_periods")["close_periods"] == 0
    assert _get(w, team, "invoices").json()["invoices"] == [invoice]
    assert _charged(w, team) == 1 and len(_ledger(w, team, "payment")) == 1


def test_a_declined_card_is_retried_a_day_later_on_the_new_default(w: World) -> None:
    team, bad = _postpaid_team(w, DECLINING_CARD)
    w.advance(days=16, hours=1)
    w.run_jobs("close_periods")
    [invoice] = _get(w, team, "invoices").json()["invoices"]
    assert invoice["invoiceStatus"] == "PENDING"
    assert invoice["chargerAttempts"] == [{"ticket": 0, "successful": False, "paymentMethodId": bad}]
    assert _get(w, team, "prepaid/balance").json()["total"] == {"val": "190"}  # still owed
    good = save_card(w, team.id, GOOD_CARD)["payment_method_id"]  # the new default
    w.advance(hours=23)
    w.run_jobs("close_periods")  # not due yet: nothing tried
    assert _get(w, team, "invoices").json()["invoices"][0]["chargerAttempts"] == invoice["chargerAttempts"]
    w.advance(hours=1)
    w.run_jobs("close_periods")
    [paid] = _get(w, team, "invoices").json()["invoices"]
    assert paid["invoiceStatus"] == "PAID" and paid["invoiceId"] == invoice["invoiceId"]
    assert paid["chargerAttempts"] == [
        {"ticket": 0, "successful": False, "paymentMethodId": bad},
        {"ticket": 1, "successful": True, "paymentMethodId": good},
    ]
    w.advance(days=2)
    w.run_jobs("close_periods")
    assert _charged(w, team) == 2 and _ledger(w, team, "payment") == [190 * 10**7]
    assert _get(w, team, "prepaid/balance").json()["total"] == {"val": "0"}


def test_an_invoice_declined_every_time_fails_after_four_attempts(w: World) -> None:
    team, _ = _postpaid_team(w, DECLINING_CARD)
    w.advance(days=16, hours=1)
    statuses = []
    for _ in range(6):
        w.run_jobs("close_periods")
        statuses.append(_get(w, team, "invoices").json()["invoices"][0]["invoiceStatus"])
        w.advance(days=1)
    assert statuses == ["PENDING"] * 3 + ["FAILED"] * 3
    [invoice] = _get(w, team, "invoices").json()["invoices"]
    assert [a["successful"] for a in invoice["chargerAttempts"]] == [False] * 4
    assert _charged(w, team) == 4 and _ledger(w, team, "payment") == []


def test_without_a_card_the_invoice_stays_pending_with_no_attempt(w: World) -> None:
    team, _ = _postpaid_team(w, None)
    w.advance(days=16, hours=1)
    w.run_jobs("close_periods")
    [invoice] = _get(w, team, "invoices").json()["invoices"]
    assert (invoice["invoiceStatus"], invoice["chargerAttempts"]) == ("PENDING", [])
    assert invoice["firstDesiredNextCycleTs"] == invoice["createTime"]


def test_two_workers_close_and_charge_each_month_once(w: World) -> None:
    teams = [_postpaid_team(w)[0] for _ in range(3)]
    w.advance(days=16, hours=1)

    async def two() -> list[dict[str, int]]:
        dbs = [Database(w.url, pool_size=4) for _ in range(2)]
        procs = [w.processor(db, w.clock) for db in dbs]
        try:
            return list(
                await asyncio.gather(
                    *(
                        jobs.run_once(
                            support.job_context(db, w.clock, p, settings=w.server.settings), ["close_periods"]
                        )
                        for db, p in zip(dbs, procs, strict=True)
                    )
                )
            )
        finally:
            for db in dbs:
                await db.dispose()

    results = asyncio.run(two())
    assert sum(r["close_periods"] for r in results) == 3
    for team in teams:
        [invoice] = _get(w, team, "invoices").json()["invoices"]
        assert invoice["invoiceStatus"] == "PAID" and len(invoice["chargerAttempts"]) == 1
        assert _charged(w, team) == 1 and _ledger(w, team, "payment") == [190 * 10**7]
        assert _spends(w, team) == [(2030, 6, {"val": "100"})]


def test_usage_reported_after_the_close_leaves_the_closed_spend_alone(w: World) -> None:
    team = new_team(w.server)
    support.grant(w.server, team.id, 1000)
    ingest(w.server, team.id, [{"id": "june", "output_tokens": 50_000, **GPT}])  # $0.725
    w.advance(days=16, hours=1)
    w.run_jobs("close_periods")
    june_ms = int(w.clock().timestamp() * 1000) - 3 * 24 * 3600 * 1000  # 2030-06-28
    late = {"id": "late", "output_tokens": 50_000, "timestamp": june_ms, **GPT}
    ingest(w.server, team.id, [late])
    assert _spends(w, team) == [(2030, 6, {"val": "73"}), (2030, 7, {"val": "73"})]
    core = _get(w, team, "postpaid/invoice/preview").json()["coreInvoice"]
    # July's rollups have nothing; the ledger debited $0.725 in July: the correction line
    assert core["totalWithCorr"] == {"val": "73"}
    assert core["lines"] == [_line("", CORRECTION, "", 0, 0, 73)]
    w.advance(days=31)
    w.run_jobs("close_periods")
    assert _spends(w, team) == [(2030, 6, {"val": "73"}), (2030, 7, {"val": "73"})]
    july = _get(w, team, "invoices", **{"billingCycle.year": 2030, "billingCycle.month": 7}).json()
    [invoice] = july["invoices"]
    assert [line["description"] for line in invoice["lines"]] == [
        "Usage of earlier periods reported after they closed"
    ]
    assert invoice["lines"][0]["amount"] == "73" and invoice["invoiceStatus"] == "PAID"
