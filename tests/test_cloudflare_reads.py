"""credit-balance, usage-history, invoice-history and invoice-preview through the official SDK."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import cloudflare
import pytest

from creditgate.clock import ManualClock
from creditgate.money import cents, parse_usd, to_cents_number
from tests import support
from tests.cloudflare_support import NOW, billing, clocked_server, funded_account, ingest, ms, sdk


@pytest.fixture(scope="module")
def clocked(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[support.LiveServer, ManualClock]]:
    with clocked_server(database_url, tmp_path_factory.mktemp("clocked")) as pair:
        yield pair


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def _units(*usd: str) -> int:
    return sum(parse_usd(u) for u in usd)


def test_balance_is_live_fractional_cents_after_topups_and_usage(server: support.LiveServer) -> None:
    account, token = funded_account(server)
    b = billing(server, token)
    b.topup.create(account_id=account, amount=5000)
    ingest(server, account, [{"id": "u1", "cost_usd": "0.0123456"}, {"id": "u2", "cost_usd": "1.5"}])
    expected = cents(5000) - _units("0.0123456", "1.5")
    balance = b.credit_balance(account_id=account).balance
    assert balance == to_cents_number(expected) == 4848.76544
    assert support.balance_units(server, account) == expected
    raw = b.with_raw_response.credit_balance(account_id=account).http_response.json()
    assert raw["success"] is True and raw["errors"] == [] and raw["messages"] == []
    assert set(raw["result"]["topup_config"]) == {
        "amount",
        "threshold",
        "disabledReason",
        "error",
        "lastFailedAt",
    }
    assert raw["result"]["payment_method"] == {"brand": "visa", "last4": "4242"}


def test_balance_without_a_card_has_null_payment_method(server: support.LiveServer) -> None:
    account = support.create_account(server)
    support.grant(server, account, 250)
    raw = (
        billing(server, support.create_token(server, account, "read"))
        .with_raw_response.credit_balance(account_id=account)
        .http_response.json()["result"]
    )
    assert raw["payment_method"] is None and raw["has_default_payment_method"] is False
    assert raw["balance"] == 250 and raw["first_topup_success"] is False
    assert raw["topup_config"] == dict.fromkeys(
        ["amount", "threshold", "disabledReason", "error", "lastFailedAt"]
    )


USAGE = [  # (event id, when, cost)
    ("a", _at(2024, 3, 1, 10, 15), "0.0100001"),
    ("b", _at(2024, 3, 1, 10, 45), "0.25"),
    ("c", _at(2024, 3, 1, 11, 5), "0.0000003"),
    ("d", _at(2024, 3, 2, 9, 0), "2"),
    ("e", _at(2024, 3, 5, 0, 0), "7"),  # outside the queried range
]


def test_usage_history_buckets_sum_to_the_ingested_cost(server: support.LiveServer) -> None:
    account = support.create_account(server)
    ingest(server, account, [{"id": i, "timestamp": ms(t), "cost_usd": c} for i, t, c in USAGE])
    b = billing(server, support.create_token(server, account, "read"))
    start, end = ms(_at(2024, 3, 1)), ms(_at(2024, 3, 3))
    days = b.usage_history(
        account_id=account, value_grouping_window="day", start_time=start, end_time=end
    ).history
    assert [(h.start_time, h.end_time) for h in days] == [
        (ms(_at(2024, 3, 1)), ms(_at(2024, 3, 2))),
        (ms(_at(2024, 3, 2)), ms(_at(2024, 3, 3))),
    ]
    assert days[0].aggregated_value == to_cents_number(_units("0.0100001", "0.25", "0.0000003"))
    assert days[1].aggregated_value == 200
    hours = b.usage_history(
        account_id=account, value_grouping_window="hour", start_time=float(start), end_time=float(end)
    ).history  # floats: the SDK sends 1709251200000.0
    assert [h.start_time for h in hours] == [
        ms(_at(2024, 3, 1, 10)),
        ms(_at(2024, 3, 1, 11)),
        ms(_at(2024, 3, 2, 9)),
    ]
    total = sum(Decimal(str(h.aggregated_value)) for h in hours)
    assert total == Decimal(_units(*(c for _, _, c in USAGE[:4]))) / 10**7
    assert len({h.id for h in hours}) == 3
    # A range starting inside a bucket includes that bucket whole; end is exclusive.
    mid = b.usage_history(
        account_id=account,
        value_grouping_window="day",
        start_time=ms(_at(2024, 3, 1, 12)),
        end_time=ms(_at(2024, 3, 2)),
    ).history
    assert [h.start_time for h in mid] == [ms(_at(2024, 3, 1))]
    empty = b.usage_history(account_id=account, value_grouping_window="day", start_time=start, end_time=start)
    assert empty.history == []


def test_usage_history_defaults_to_the_current_calendar_month(
    clocked: tuple[support.LiveServer, ManualClock],
) -> None:
    server, clock = clocked
    clock.now = NOW
    account = support.create_account(server)
    ingest(
        server,
        account,
        [
            {"id": "may", "timestamp": ms(_at(2030, 5, 31, 23, 30)), "cost_usd": "1"},
            {"id": "june1", "timestamp": ms(_at(2030, 6, 1, 0, 30)), "cost_usd": "0.5"},
            {"id": "june15", "cost_usd": "0.25"},  # no timestamp: the server's now
            {"id": "july", "timestamp": ms(_at(2030, 7, 1, 0, 10)), "cost_usd": "4"},
        ],
    )
    b = billing(server, support.create_token(server, account, "read"))
    history = b.usage_history(account_id=account, value_grouping_window="day").history
    assert [(h.start_time, h.aggregated_value) for h in history] == [
        (ms(_at(2030, 6, 1)), 50),
        (ms(_at(2030, 6, 15)), 25),
    ]
    only_end = b.usage_history(account_id=account, value_grouping_window="day", end_time=ms(_at(2030, 6, 2)))
    assert [h.aggregated_value for h in only_end.history] == [50]
    only_start = b.usage_history(
        account_id=account, value_grouping_window="day", start_time=ms(_at(2030, 5, 31))
    )
    assert [h.aggregated_value for h in only_start.history] == [100, 50, 25]


def test_usage_history_rejects_bad_input(server: support.LiveServer) -> None:
    account = support.create_account(server)
    client = sdk(server, support.create_token(server, account, "read"))
    b = client.ai_gateway.billing
    cases = [
        ({"value_grouping_window": "week"}, "/value_grouping_window"),
        ({"value_grouping_window": "day", "start_time": "yesterday"}, "/start_time"),
        ({"value_grouping_window": "day", "end_time": "NaN"}, "/end_time"),
        ({"value_grouping_window": "day", "start_time": -1}, "/start_time"),
        ({"value_grouping_window": "day", "start_time": 1e30}, "/start_time"),
        ({"value_grouping_window": "day", "start_time": 253402300799999}, "/start_time"),
        (
            {"value_grouping_window": "day", "start_time": 1700086400000, "end_time": 1700000000000},
            "/start_time",
        ),
    ]
    for params, pointer in cases:
        with pytest.raises(cloudflare.BadRequestError) as err:
            b.usage_history(account_id=account, **params)
        assert err.value.errors[0].source.pointer == pointer, params
    far = b.usage_history(account_id=account, value_grouping_window="hour", start_time=253370764799999)
    assert far.history == []  # the latest accepted time still works
    with pytest.raises(cloudflare.BadRequestError) as err:
        client.get(f"/accounts/{account}/ai-gateway/billing/usage-history", cast_to=object)
    assert err.value.errors[0].source.pointer == "/value_grouping_window"


def test_invoice_history_filters_and_pages(clocked: tuple[support.LiveServer, ManualClock]) -> None:
    server, clock = clocked
    clock.now = NOW
    account, token = funded_account(server)
    b = billing(server, token)
    ids = []
    for amount in (1000, 2000, 3000):
        ids.append(b.topup.create(account_id=account, amount=amount).payment_intent_id)
        clock.advance(minutes=5)
    history = b.invoice_history(account_id=account)
    assert [i.id for i in history.invoices] == ids[::-1]
    assert [i.amount_due for i in history.invoices] == [3000, 2000, 1000]
    assert [i.created for i in history.invoices] == [
        ms(NOW + timedelta(minutes=m)) // 1000 for m in (10, 5, 0)
    ]
    assert [i.number[-4:] for i in history.invoices] == ["0003", "0002", "0001"]
    p = history.pagination
    assert (p.has_more, p.page, p.per_page, p.total_count) == (False, 1, 20, 3)
    assert len(b.invoice_history(account_id=account, type="manual").invoices) == 3
    auto = b.invoice_history(account_id=account, type="auto")
    assert auto.invoices == [] and auto.pagination.total_count == 0
    page1 = b.invoice_history(account_id=account, extra_query={"per_page": 2})
    page2 = b.invoice_history(account_id=account, extra_query={"per_page": 2, "page": 2})
    assert [i.id for i in page1.invoices] == ids[:0:-1] and page1.pagination.has_more is True
    assert [i.id for i in page2.invoices] == ids[:1] and page2.pagination.has_more is False
    for bad, pointer in [
        ({"type": "yearly"}, "/type"),
        ({"extra_query": {"page": 0}}, "/page"),
        ({"extra_query": {"per_page": 101}}, "/per_page"),
        ({"extra_query": {"page": "x"}}, "/page"),
        ({"extra_query": {"page": "\u00b2"}}, "/page"),
    ]:
        with pytest.raises(cloudflare.BadRequestError) as err:
            b.invoice_history(account_id=account, **bad)
        assert err.value.errors[0].source.pointer == pointer


def test_invoice_preview_is_this_months_usage_net_of_credits(
    clocked: tuple[support.LiveServer, ManualClock],
) -> None:
    server, clock = clocked
    clock.now = NOW
    account, token = funded_account(server)
    b = billing(server, token)
    b.topup.create(account_id=account, amount=1000)
    ingest(
        server,
        account,
        [
            {"id": "old", "timestamp": ms(_at(2030, 5, 20)), "cost_usd": "3"},
            {"id": "g1", "timestamp": ms(_at(2030, 6, 2)), "cost_usd": "0.0012345"},
            {"id": "g2", "timestamp": ms(_at(2030, 6, 3)), "cost_usd": "0.0100000"},
            {
                "id": "c1",
                "timestamp": ms(_at(2030, 6, 4)),
                "cost_usd": "1.25",
                "model": "claude-3-5-sonnet",
                "provider": "anthropic",
                "input_tokens": 2000,
                "cached_tokens": 500,
            },
        ],
    )
    preview = b.invoice_preview(account_id=account)
    assert preview.status == "draft" and preview.currency == "usd"
    assert (preview.period_start, preview.period_end) == (
        ms(_at(2030, 6, 1)) // 1000,
        ms(_at(2030, 7, 1)) // 1000,
    )
    by_model = {line.description.split(":")[0]: line for line in preview.invoice_lines}
    assert set(by_model) == {"anthropic/claude-3-5-sonnet", "openai/gpt-4o"}
    gpt, claude = by_model["openai/gpt-4o"], by_model["anthropic/claude-3-5-sonnet"]
    assert (gpt.quantity, gpt.amount) == (2, to_cents_number(_units("0.0012345", "0.01")))
    assert gpt.pricing.unit_amount_decimal == "0.561725"
    assert (claude.quantity, claude.amount, claude.pricing.unit_amount_decimal) == (1, 125, "125")
    assert "2,000 input tokens (500 cached)" in claude.description
    # $10 of credit covered all of June's usage (May's is not on this invoice).
    for line in (gpt, claude):
        assert [(c.amount, c.type) for c in line.pretax_credit_amounts] == [
            (line.amount, "credit_balance_transaction")
        ]
    assert (preview.amount_due, preview.amount_paid, preview.amount_remaining) == (0, 0, 0)
    assert b.credit_balance(account_id=account).balance == to_cents_number(
        cents(1000) - _units("3", "0.0012345", "0.01", "1.25")
    )


def test_invoice_preview_amount_due_is_what_credits_did_not_cover(
    clocked: tuple[support.LiveServer, ManualClock],
) -> None:
    server, clock = clocked
    clock.now = NOW
    account = support.create_account(server, mode="postpaid", postpaid_limit_cents=100_000)
    support.grant(server, account, 100)
    ingest(
        server,
        account,
        [
            {
                "id": "x",
                "timestamp": ms(_at(2030, 6, 5)),
                "cost_usd": "0.6",
                "model": "a-model",
                "provider": "acme",
            },
            {"id": "y", "timestamp": ms(_at(2030, 6, 6)), "cost_usd": "2.4"},
        ],
    )
    preview = billing(server, support.create_token(server, account, "read")).invoice_preview(
        account_id=account
    )
    acme, gpt = preview.invoice_lines  # ordered by provider, model
    assert (acme.amount, gpt.amount) == (60, 240)
    assert [c.amount for c in acme.pretax_credit_amounts] == [60]
    assert [c.amount for c in gpt.pretax_credit_amounts] == [40]
    assert preview.amount_due == preview.amount_remaining == 200


def test_empty_month_preview_is_a_zero_draft(server: support.LiveServer) -> None:
    account = support.create_account(server)
    preview = billing(server, support.create_token(server, account, "read")).invoice_preview(
        account_id=account
    )
    assert preview.invoice_lines == [] and preview.amount_due == 0 and preview.status == "draft"
