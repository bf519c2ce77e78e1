"""The xAI reads over the ledger on SQLite and PostgreSQL: payment methods (the saved cards),
invoices (top-up and monthly statement invoices, their statuses and filters) and the prepaid
balance with its changes (sign convention, origins, top-up statuses, total = the ledger)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creditgate.money import parse_usd, to_whole_cents
from tests import support
from tests.autotopup_support import World, world
from tests.cloudflare_support import add_card
from tests.xai_support import Team, ingest, new_team, status_body

STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?Z")


def _topup(server: support.LiveServer, team: Team, cents: int) -> Any:
    with server.client(team.write) as c:
        return c.post(f"/client/v4/accounts/{team.id}/ai-gateway/billing/topup", json={"amount": cents})


def _ledger(server: support.LiveServer, team: Team) -> list[dict[str, Any]]:
    with server.admin() as c:
        return list(c.get(f"/admin/v1/accounts/{team.id}/ledger").json()["entries"])


def test_payment_methods_are_the_saved_cards_default_first(server: support.LiveServer) -> None:
    team = new_team(server)
    with server.client(team.read) as c:
        assert c.get(team.path("payment-method")).text == '{"paymentMethods":[],"pendingPaymentMethod":null}'
        first = add_card(server, team.id)["payment_method_id"]
        second = add_card(server, team.id, "5555555555554444")["payment_method_id"]  # now the default
        r = c.get(team.path("payment-method"))
    card = (
        '{{"paymentMethodId":"{}","billingInfo":null,"cardDetails":{{"brand":"{}","expMonth":"12",'
        '"expYear":"{}","last4":"{}"}},"usBankAccountDetails":null,"linkDetails":null,"paymentType":"card"}}'
    )
    year = r.json()["paymentMethods"][0]["cardDetails"]["expYear"]
    assert r.text == (
        '{"paymentMethods":['
        + card.format(second, "mastercard", year, "4444")
        + ","
        + card.format(first, "visa", year, "4242")
        + '],"pendingPaymentMethod":null}'
    )


def test_invoices_of_top_ups_with_statuses_and_filters(server: support.LiveServer) -> None:
    team, other = new_team(server), new_team(server)
    card = add_card(server, team.id)["payment_method_id"]
    paid = _topup(server, team, 5000).json()["result"]["payment_intent_id"]
    add_card(server, team.id, "4000000000000341")  # the new default: every charge declined
    assert _topup(server, team, 2500).status_code == 402
    with server.client(team.read) as c:
        listed = c.get(team.path("invoices")).json()["invoices"]
        assert [i["invoiceStatus"] for i in listed] == ["FAILED", "PAID"]  # newest first
        failed, done = listed
        assert done["invoiceId"] == paid and STAMP.fullmatch(done["createTime"])
        assert c.get(team.path("invoices")).text.count('"prepaid":{}') == 2
        assert list(done) == [
            "teamId", "invoiceId", "invoiceNumber", "createTime", "invoiceStatus", "firstDesiredNextCycleTs",
            "chargerAttempts", "lines", "subtotal", "tax", "total", "invoicePdfAssetKeySuffix", "prepaid",
        ]  # fmt: skip
        assert (done["teamId"], done["subtotal"], done["tax"], done["total"]) == (
            team.id,
            "5000",
            "0",
            "5000",
        )
        assert done["chargerAttempts"] == [{"ticket": 0, "successful": True, "paymentMethodId": card}]
        assert failed["total"] == "2500" and failed["chargerAttempts"][0]["successful"] is False
        pdf = c.get("/" + done["invoicePdfAssetKeySuffix"])
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        year, month = (int(x) for x in done["createTime"][:7].split("-"))
        later = (year + 1, 1) if month == 12 else (year, month + 1)

        def ids(**params: Any) -> list[str]:
            r = c.get(team.path("invoices"), params=params)
            assert r.status_code == 200, r.text
            return [i["invoiceId"] for i in r.json()["invoices"]]

        both = [failed["invoiceId"], paid]
        assert ids(**{"billingCycle.year": year, "billingCycle.month": month}) == both
        assert ids(**{"billing_cycle.year": later[0], "billing_cycle.month": later[1]}) == []
        assert ids(**{"since.year": year, "since.month": month}) == both
        assert ids(**{"since.year": later[0], "since.month": later[1]}) == []
        assert ids(**{"invoiceIds.invoiceIds": paid}) == [paid]
        assert ids(**{"invoiceIds.invoiceIds": [paid, failed["invoiceId"]]}) == both
        bad = [
            {"billingCycle.year": year, "billingCycle.month": month, "since.year": year, "since.month": 1},
            {"billingCycle.year": year, "billingCycle.month": 13},
            {"billingCycle.year": "twenty", "billingCycle.month": 1},
            {"since.year": year},
        ]
        for params in bad:
            assert status_body(c.get(team.path("invoices"), params=params), 400, 3), params
    with server.client(other.read) as c:  # another team sees none of them, even by id
        assert c.get(other.path("invoices"), params={"invoiceIds.invoiceIds": paid}).text == '{"invoices":[]}'


def test_prepaid_balance_is_a_view_of_the_ledger(server: support.LiveServer) -> None:
    team = new_team(server)
    with server.client(team.read) as c:
        assert c.get(team.path("prepaid/balance")).text == '{"changes":[],"total":{"val":"0"}}'
    add_card(server, team.id)
    invoice = _topup(server, team, 5000).json()["result"]["payment_intent_id"]
    support.grant(server, team.id, 250)
    with server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{team.id}/adjustments", json={"amount_cents": -100, "reason": "fix"})
        assert r.status_code == 201, r.text
        [topup] = c.get(f"/admin/v1/accounts/{team.id}/topups").json()["topups"]
        r = c.post(f"/admin/v1/accounts/{team.id}/topups/{topup['id']}/refund", json={"amount": 1000})
        assert r.status_code == 200, r.text
    gpt = {"model": "gpt-4o", "provider": "openai", "output_tokens": 500}
    ingest(server, team.id, [{"id": f"e{i}", "input_tokens": 1000 * i, **gpt} for i in range(1, 6)])
    add_card(server, team.id, "4000000000000341")
    assert _topup(server, team, 2500).status_code == 402  # listed, but moves no money
    with server.client(team.read) as c:
        body = c.get(team.path("prepaid/balance")).json()
    entries = {e["kind"]: e for e in _ledger(server, team)}
    purchase, grant, adjustment, refund, failed, spend = body["changes"]
    number = support.query(
        server.settings.database_url, "SELECT number FROM invoices WHERE id = :i", i=invoice
    )
    assert purchase == {
        "teamId": team.id,
        "changeOrigin": "PURCHASE",
        "topupStatus": "SUCCEEDED",
        "amount": {"val": "-5000"},
        "invoiceId": invoice,
        "invoiceNumber": number[0][0],
        "createTime": purchase["createTs"],
        "createTs": purchase["createTs"],
        "paymentProcessor": {"kind": "EXTERNAL"},
    }
    assert list(purchase) == [  # declaration order, the docs-only paymentProcessor last
        "teamId", "changeOrigin", "topupStatus", "amount", "invoiceId", "invoiceNumber", "createTime",
        "createTs", "paymentProcessor",
    ]  # fmt: skip
    assert list(body) == ["changes", "total"]
    assert purchase["createTs"].replace("Z", "+00:00") == entries["topup"]["created_at"]
    assert (grant["changeOrigin"], grant["amount"]) == ("MANUAL", {"val": "-250"})
    assert (adjustment["changeOrigin"], adjustment["amount"]) == ("MANUAL", {"val": "100"})
    assert (refund["changeOrigin"], refund["amount"]) == ("REFUND", {"val": "1000"})  # credit taken back
    assert (failed["changeOrigin"], failed["topupStatus"], failed["amount"]) == (
        "PURCHASE",
        "FAILED_TO_CHARGE",
        {"val": "-2500"},
    )
    ledger_usage = -sum(parse_usd(e["amount_usd"]) for e in _ledger(server, team) if e["kind"] == "usage")
    assert ledger_usage > 0
    assert list(spend) == [
        "teamId",
        "changeOrigin",
        "amount",
        "createTime",
        "spendBpKeyYear",
        "spendBpKeyMonth",
    ]
    assert spend["createTime"] is None and spend["amount"] == {"val": str(to_whole_cents(ledger_usage))}
    # total: the ledger balance, credit negative, the failed top-up not counted
    balance = support.balance_units(server, team.id)
    assert body["total"] == {"val": str(-to_whole_cents(balance))}
    with server.client(team.read) as c:
        cloudflare = c.get(f"/client/v4/accounts/{team.id}/ai-gateway/billing/credit-balance").json()[
            "result"
        ]
    assert round(cloudflare["balance"]) == -int(body["total"]["val"])


@pytest.fixture
def w(fresh_database_url: str, tmp_path: Path) -> Iterator[World]:
    with world(fresh_database_url, tmp_path) as live:
        yield live


def test_a_monthly_statement_is_a_monthly_invoice_with_unit_type_lines(w: World) -> None:
    team = new_team(w.server, mode="postpaid")
    support.grant(w.server, team.id, 100)
    call = {"model": "gpt-4o", "provider": "openai", "input_tokens": 100_000, "cached_tokens": 20_000}
    ingest(w.server, team.id, [{"id": f"u{i}", "output_tokens": 50_000, **call} for i in range(4)])
    w.advance(days=16, hours=1)  # 2030-07-01 13:00: June can be closed
    assert w.run_jobs("close_periods")["close_periods"] == 1
    with w.server.client(team.read) as c:
        [statement] = c.get(team.path("invoices")).json()["invoices"]
        june = c.get(
            team.path("invoices"), params={"billingCycle.year": 2030, "billingCycle.month": 6}
        ).json()
        balance = c.get(team.path("prepaid/balance")).json()
    assert june["invoices"] == [statement]
    assert list(statement)[-1] == "monthly" and "prepaid" not in statement
    assert statement["monthly"] == {
        "billingCycle": {"year": 2030, "month": 6},
        "defaultCreditsIssued": {"val": "0"},
        "autoCreditsIssued": {"val": "0"},
        "prepaidTokensToSpend": {"val": "-100"},
    }
    lines = statement["lines"]
    assert [(line["unitType"], line["numUnits"]) for line in lines] == [
        ("Prompt text tokens", "320000"),
        ("Cached prompt text tokens", "80000"),
        ("Completion text tokens", "200000"),
    ]
    assert {line["description"] for line in lines} == {"gpt-4o"} and {
        line["clusterName"] for line in lines
    } == {"openai"}
    assert [line["unitPrice"] for line in lines] == ["25000", "12500", "100000"]  # $2.50 / $1.25 / $10 per 1M
    # 4 x (80k x $2.50 + 20k x $1.25 + 50k x $10) / 1M = $2.90: $1.00 of credit, $1.90 due
    assert [line["amount"] for line in lines] == ["80", "10", "200"]
    assert (statement["invoiceStatus"], statement["total"]) == ("PENDING", "190")
    [spend] = [ch for ch in balance["changes"] if ch["changeOrigin"] == "SPEND"]
    # the SPEND change is the prepaid part; the postpaid part is on the (unpaid) monthly invoice
    assert (spend["spendBpKeyYear"], spend["spendBpKeyMonth"], spend["amount"]) == (2030, 6, {"val": "100"})
    assert balance["total"] == {"val": "190"}  # overdrawn: positive
