"""The xAI wire layer without a server: Go protojson's output rules, lenient input, and the
calendar buckets and cost split behind usage analytics."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditgate.api.xai.analytics import AnalyzeBillingItemsRequest, TimeUnit
from creditgate.api.xai.billing import (
    ChangeOrigin,
    Empty,
    InvoiceBundle,
    InvoiceStatus,
    PrepaidBalanceChange,
    SetBillingInfoReq,
    TopUpStatus,
)
from creditgate.api.xai.protojson import decode, encode, timestamp
from creditgate.api.xai.types import Cent, PaymentMethod
from creditgate.errors import ValidationError
from creditgate.metering import unit_types
from creditgate.metering.analytics import plan
from creditgate.metering.buckets import bucket_starts
from creditgate.metering.catalog import Price

T = datetime(2025, 11, 20, 16, 45, 3, 551209, tzinfo=UTC)


def dumps(message: object) -> str:
    return json.dumps(encode(message), separators=(",", ":"))


def test_timestamps_use_z_and_0_3_or_6_fraction_digits() -> None:
    assert timestamp(T) == "2025-11-20T16:45:03.551209Z"
    assert timestamp(T.replace(microsecond=551000)) == "2025-11-20T16:45:03.551Z"
    assert timestamp(T.replace(microsecond=0)) == "2025-11-20T16:45:03Z"
    assert timestamp(T.astimezone(ZoneInfo("Asia/Kolkata"))) == "2025-11-20T16:45:03.551209Z"


def test_emit_rules_in_declaration_order() -> None:
    change = PrepaidBalanceChange(
        team_id="t",
        change_origin=ChangeOrigin.PURCHASE,
        topup_status=TopUpStatus.TO_CHARGE,
        amount=Cent(-2500),
    )
    # optional fields left out, the unset sub-message `createTime` is null, int64 a string
    assert dumps(change) == (
        '{"teamId":"t","changeOrigin":"PURCHASE","topupStatus":"TO_CHARGE","amount":{"val":"-2500"},'
        '"createTime":null}'
    )
    spend = PrepaidBalanceChange(
        team_id="t",
        change_origin=ChangeOrigin.SPEND,
        amount=Cent(1240),
        spend_bp_key_year=2025,
        spend_bp_key_month=10,
    )
    assert dumps(spend) == (
        '{"teamId":"t","changeOrigin":"SPEND","amount":{"val":"1240"},"createTime":null,'
        '"spendBpKeyYear":2025,"spendBpKeyMonth":10}'
    )
    # the docs' spelling of the misspelt status goes out
    failed = PrepaidBalanceChange(topup_status=TopUpStatus.FAILED_TO_GENERATE_INVOICE)
    assert encode(failed)["topupStatus"] == "FAILED_TO_GEMNERATE_INVOICE"


def test_oneof_only_the_set_member_and_empty_lists() -> None:
    bundle = InvoiceBundle(team_id="t", invoice_status=InvoiceStatus.PAID, create_time=T, prepaid=Empty())
    assert dumps(bundle) == (
        '{"teamId":"t","invoiceId":"","invoiceNumber":"","createTime":"2025-11-20T16:45:03.551209Z",'
        '"invoiceStatus":"PAID","firstDesiredNextCycleTs":null,"chargerAttempts":[],"lines":[],'
        '"subtotal":"0","tax":"0","total":"0","invoicePdfAssetKeySuffix":"","prepaid":{}}'
    )
    assert dumps(PaymentMethod()) == (
        '{"paymentMethodId":"","billingInfo":null,"cardDetails":null,"usBankAccountDetails":null,'
        '"linkDetails":null,"paymentType":""}'
    )


def test_lenient_input() -> None:
    body = {
        "analytics_request": {
            "timeRange": {"start_time": "2025-11-01 00:00:00", "endTime": "2025-11-02 00:00:00"},
            "time_unit": 3,
            "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}, {"name": "n", "aggregation": 11}],
            "groupBy": ["description"],
            "somethingNew": {"ignored": True},
        }
    }
    parsed = decode(AnalyzeBillingItemsRequest, body)
    request = parsed.analytics_request
    assert request is not None and request.time_range is not None
    assert request.time_unit == TimeUnit.TIME_UNIT_DAY
    assert request.time_range.start_time == "2025-11-01 00:00:00"
    assert [v.aggregation.name for v in request.values] == ["AGGREGATION_SUM", "AGGREGATION_COUNT"]
    assert decode(Cent, {"val": "500"}).val == decode(Cent, {"val": 500}).val == 500
    assert decode(PrepaidBalanceChange, {"topupStatus": "FAILED_TO_GEMNERATE_INVOICE"}).topup_status == 20
    assert decode(PrepaidBalanceChange, {"topup_status": "FAILED_TO_GENERATE_INVOICE"}).topup_status == 20
    assert decode(PrepaidBalanceChange, {"createTime": "2025-11-20T16:45:03.551209123Z"}).create_time == T
    assert decode(PrepaidBalanceChange, {"amount": None}).amount is None
    for bad in ("0001-01-01T00:00:00+01:00", "2025-02-30T00:00:00Z", "2025-01-01 00:00:00"):
        with pytest.raises(ValidationError):
            decode(PrepaidBalanceChange, {"createTs": bad})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"val": "1.5"}, "val"),
        ({"val": True}, "val"),
        ({"val": str(2**63)}, "val"),
        ({"val": [1]}, "val"),
    ],
)
def test_bad_int64_names_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode(Cent, body)
    assert caught.value.field == field


def test_bad_nested_values_name_their_path() -> None:
    cases = [
        ({"analyticsRequest": {"timeUnit": "TIME_UNIT_FORTNIGHT"}}, "analyticsRequest.timeUnit"),
        ({"analyticsRequest": {"timeUnit": 99}}, "analyticsRequest.timeUnit"),
        ({"analyticsRequest": {"groupBy": "description"}}, "analyticsRequest.groupBy"),
        ({"analyticsRequest": {"groupBy": [1]}}, "analyticsRequest.groupBy[0]"),
        ({"analyticsRequest": []}, "analyticsRequest"),
    ]
    for body, field in cases:
        with pytest.raises(ValidationError) as caught:
            decode(AnalyzeBillingItemsRequest, body)
        assert caught.value.field == field, body


def test_buckets_in_a_half_hour_zone_start_at_local_midnight() -> None:
    zone = ZoneInfo("Asia/Kolkata")
    start = datetime(2025, 10, 31, 18, 30, tzinfo=UTC)  # 2025-11-01 00:00 in Kolkata
    end = datetime(2025, 11, 3, 18, 30, tzinfo=UTC)
    assert bucket_starts(start, end, zone, "day", 100) == [
        datetime(2025, 10, 31, 18, 30, tzinfo=UTC),
        datetime(2025, 11, 1, 18, 30, tzinfo=UTC),
        datetime(2025, 11, 2, 18, 30, tzinfo=UTC),
    ]
    months = bucket_starts(
        datetime(2025, 1, 15, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC), zone, "month", 10
    )
    assert months == [
        datetime(2024, 12, 31, 18, 30, tzinfo=UTC),
        datetime(2025, 1, 31, 18, 30, tzinfo=UTC),
        datetime(2025, 2, 28, 18, 30, tzinfo=UTC),
    ]
    weeks = bucket_starts(
        datetime(2025, 11, 5, tzinfo=UTC), datetime(2025, 11, 11, tzinfo=UTC), ZoneInfo("UTC"), "week", 10
    )
    assert weeks == [datetime(2025, 11, 3, tzinfo=UTC), datetime(2025, 11, 10, tzinfo=UTC)]
    with pytest.raises(ValidationError):
        bucket_starts(start, end, zone, "hour", 10)


def test_plan_reads_single_events_only_in_hours_cut_by_an_edge() -> None:
    start = datetime(2025, 10, 31, 18, 30, tzinfo=UTC)
    end = datetime(2025, 11, 2, 18, 30, tzinfo=UTC)
    edges = [datetime(2025, 11, 1, 18, 30, tzinfo=UTC)]
    days, hours, raw = plan(start, end, edges)
    hour = 3600
    assert [(b - a).total_seconds() for a, b in raw] == [hour / 2, hour, hour / 2]
    assert days == [], "every UTC day holds a Kolkata midnight"
    covered = sum((b - a).total_seconds() for a, b in days + hours + raw)
    assert covered == (end - start).total_seconds()
    utc_edges = [datetime(2025, 11, d, tzinfo=UTC) for d in (2, 3)]
    days, hours, raw = plan(
        datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 11, 4, 2, 15, tzinfo=UTC), utc_edges
    )
    assert days == [(datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 11, 4, tzinfo=UTC))]
    assert hours == [(datetime(2025, 11, 4, tzinfo=UTC), datetime(2025, 11, 4, 2, tzinfo=UTC))]
    assert raw == [(datetime(2025, 11, 4, 2, tzinfo=UTC), datetime(2025, 11, 4, 2, 15, tzinfo=UTC))]


def test_cost_split_adds_up_exactly_and_follows_rates() -> None:
    price = Price(1, "openai", "gpt-4o", T, 2_500_000_000, 10_000_000_000, 1_250_000_000, 0)
    parts = unit_types.split(
        price, input_tokens=1000, cached_tokens=200, output_tokens=500, events=3, cost=7_250_001
    )
    assert sum(p.cost for p in parts) == 7_250_001
    by_type = {p.unit_type: p for p in parts}
    assert set(by_type) == {unit_types.PROMPT, unit_types.CACHED, unit_types.COMPLETION}
    assert (by_type[unit_types.PROMPT].units, by_type[unit_types.CACHED].units) == (800, 200)
    assert by_type[unit_types.PROMPT].unit_price == 25_000  # $2.50 per 1M tokens in 1e-10 USD
    assert by_type[unit_types.COMPLETION].cost > by_type[unit_types.PROMPT].cost
    own = unit_types.split(None, input_tokens=0, cached_tokens=0, output_tokens=0, events=1, cost=5)
    assert [(p.unit_type, p.cost) for p in own] == [(unit_types.REQUESTS, 5)]
    assert unit_types.allocate(10, [1, 1, 1]) == [4, 3, 3]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(
    ["analyticsRequest", "analytics_request", "timeRange", "startTime", "timeUnit", "values", "groupBy",
     "filters", "name", "aggregation", "billingInfo", "address", "country", "taxIdType", "val", "x"]
)  # fmt: skip
SHAPED = st.recursive(JSON_VALUES, lambda inner: st.dictionaries(KEYS, inner, max_size=5), max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(SHAPED)
def test_decoding_any_json_is_a_message_or_a_validation_error(data: object) -> None:
    for cls in (AnalyzeBillingItemsRequest, SetBillingInfoReq, PrepaidBalanceChange):
        try:
            message = decode(cls, data)
        except ValidationError as exc:
            assert exc.field, exc.message
            continue
        again = decode(cls, json.loads(json.dumps(encode(message))))
        assert encode(again) == encode(message)  # what we read, we write back the same
