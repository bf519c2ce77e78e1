"""POST usage analytics on SQLite and PostgreSQL, checked against sums computed directly from
the stored events: HOUR, DAY, CALENDAR_WEEK, MONTH and NONE buckets in UTC, in a zone with a
half-hour offset (Asia/Kolkata) and across a DST change; groupBy and filters; unit types;
COUNT and token sums; the exact body; each error case."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from creditgate.money import UNITS_PER_USD
from tests import support
from tests.xai_support import Team, ingest, new_team, status_body

MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4"),
    ("acme", "own-model"),
]
KEYS = ["key-a", "key-b", 4711, None]  # metadata.api_key_id; an integer is read as its digits
FIRST = datetime(2025, 10, 30, tzinfo=UTC)
WHOLE_RANGE = {"startTime": "2025-10-30 00:00:00", "endTime": "2025-11-05 00:00:00", "timezone": "Etc/GMT"}
SPAN_MINUTES = 6 * 24 * 60  # events over 2025-10-30 .. 2025-11-05 (UTC)


def _events(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(240):
        provider, model = rng.choice(MODELS)
        moment = FIRST + timedelta(minutes=rng.randrange(SPAN_MINUTES), seconds=rng.randrange(60))
        tokens = rng.randrange(1, 50_000)
        event = {
            "id": f"ev{i}",
            "provider": provider,
            "model": model,
            "input_tokens": tokens,
            "cached_tokens": rng.randrange(0, tokens),
            "output_tokens": rng.randrange(0, 5000),
            "timestamp": int(moment.timestamp() * 1000),
        }
        if provider == "acme":
            event["cost_usd"] = f"0.{rng.randrange(10**8):08d}"
        if KEYS[i % len(KEYS)] is not None:
            event["metadata"] = {"gateway_id": "edge-1", "api_key_id": KEYS[i % len(KEYS)]}
        out.append(event)
    return out


@pytest.fixture(scope="module")
def team(server: support.LiveServer) -> Team:
    team = new_team(server)
    support.grant(server, team.id, 1_000_000)
    ingest(server, team.id, _events(7))
    return team


def stored(server: support.LiveServer, team: Team) -> list[tuple[datetime, str, str, int, int, int, int]]:
    rows = support.query(
        server.settings.database_url,
        "SELECT occurred_at, provider, model, input_tokens, output_tokens, cached_tokens, cost "
        "FROM usage_events WHERE account_id = :a",
        a=team.id,
    )
    out = []
    for at, provider, model, inp, outp, cached, cost in rows:
        moment = datetime.fromisoformat(at) if isinstance(at, str) else at
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        out.append((moment, provider, model, int(inp), int(outp), int(cached), int(cost)))
    return out


def floor(moment: datetime, zone: ZoneInfo, unit: str) -> datetime:
    """The start of the local bucket holding `moment`, in UTC (independent of the server)."""
    local = moment.astimezone(zone)
    if unit == "hour":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = local.date()
    if unit == "week":
        day -= timedelta(days=day.weekday())
    if unit == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def ask(server: support.LiveServer, team: Team, request: dict[str, Any]) -> Any:
    with server.client(team.read) as c:
        r = c.post(team.path("usage"), json={"analyticsRequest": request})
    assert r.status_code == 200, r.text
    return r.json()


def local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def time_range(start: datetime, end: datetime, zone: ZoneInfo) -> dict[str, str]:
    return {"startTime": local(start, zone), "endTime": local(end, zone), "timezone": zone.key}


def d(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


CASES = [
    ("UTC", "TIME_UNIT_DAY", "day", d(2025, 10, 30), d(2025, 11, 5)),
    ("UTC", "TIME_UNIT_HOUR", "hour", d(2025, 11, 1, 0, 30), d(2025, 11, 2, 5, 10)),
    ("UTC", "TIME_UNIT_MONTH", "month", d(2025, 10, 15), d(2025, 11, 20)),
    ("Asia/Kolkata", "TIME_UNIT_DAY", "day", d(2025, 10, 29, 18, 30),
     d(2025, 11, 4, 18, 30)),
    ("Asia/Kolkata", "TIME_UNIT_HOUR", "hour", d(2025, 11, 1, 3, 0),
     d(2025, 11, 2, 7, 45)),
    ("Asia/Kolkata", "TIME_UNIT_MONTH", "month", d(2025, 10, 1), d(2025, 11, 30)),
    ("America/New_York", "TIME_UNIT_CALENDAR_WEEK", "week", d(2025, 10, 29),
     d(2025, 11, 6)),
    ("America/New_York", "TIME_UNIT_DAY", "day", d(2025, 11, 1, 4), d(2025, 11, 4, 5)),
]  # fmt: skip


@pytest.mark.parametrize(("zone_name", "unit_name", "unit", "start", "end"), CASES)
def test_buckets_agree_with_the_stored_events(
    server: support.LiveServer,
    team: Team,
    zone_name: str,
    unit_name: str,
    unit: str,
    start: datetime,
    end: datetime,
) -> None:
    zone = ZoneInfo(zone_name)
    events = [e for e in stored(server, team) if start <= e[0] < end]
    assert events, "the range holds usage"
    sums: dict[datetime, list[int]] = defaultdict(lambda: [0, 0, 0])
    for at, _p, _m, inp, outp, _cached, cost in events:
        point = sums[floor(at, zone, unit)]
        point[0] += cost
        point[1] += 1
        point[2] += inp + outp
    body = ask(
        server,
        team,
        {
            "timeRange": time_range(start, end, zone),
            "timeUnit": unit_name,
            "values": [
                {"name": "usd", "aggregation": "AGGREGATION_SUM"},
                {"name": "usd", "aggregation": "AGGREGATION_COUNT"},
                {"name": "tokens", "aggregation": "AGGREGATION_SUM"},
            ],
            "groupBy": [],
            "filters": [],
        },
    )
    assert body["limitReached"] is False
    [series] = body["timeSeries"]
    assert series["group"] == [] and series["groupLabels"] == []
    stamps = [datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00")) for p in series["dataPoints"]]
    # dense: every bucket from the one holding `start` to the last one starting before `end`
    expected_stamps, moment = [], floor(start, zone, unit)
    while moment < end:
        expected_stamps.append(moment)
        step = {"hour": timedelta(hours=1), "day": timedelta(hours=36), "week": timedelta(days=7, hours=12)}
        moment = floor(moment + step.get(unit, timedelta(days=32)), zone, unit)
    assert stamps == expected_stamps
    for stamp, point in zip(stamps, series["dataPoints"], strict=True):
        cost, count, tokens = sums.get(stamp, [0, 0, 0])
        assert point["values"] == [cost / UNITS_PER_USD, count, tokens], stamp
    assert sum(p["values"][1] for p in series["dataPoints"]) == len(events)


def test_none_groups_and_filters(server: support.LiveServer, team: Team) -> None:
    events = stored(server, team)
    zone = ZoneInfo("Asia/Kolkata")
    start, end = datetime(2025, 10, 30, 7, 15, tzinfo=UTC), datetime(2025, 11, 4, 22, 45, tzinfo=UTC)
    inside = [e for e in events if start <= e[0] < end]

    def query(group_by: list[str], filters: list[str]) -> Any:
        return ask(
            server,
            team,
            {
                "timeRange": {
                    "startTime": local(start, zone),
                    "endTime": local(end, zone),
                    "timezone": zone.key,
                },
                "timeUnit": "TIME_UNIT_NONE",
                "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
                "groupBy": group_by,
                "filters": filters,
            },
        )["timeSeries"]

    def total(keep: Callable[[Any], bool]) -> float:
        return sum(e[6] for e in inside if keep(e)) / UNITS_PER_USD

    series = query(["provider", "description"], [])
    assert [s["group"] for s in series] == sorted([list(m) for m in {(e[1], e[2]) for e in inside}])
    for s in series:
        assert s["groupLabels"] == s["group"]
        [point] = s["dataPoints"]
        assert point["timestamp"] == start.isoformat().replace("+00:00", "Z")
        assert point["values"] == [total(lambda e, g=s["group"]: [e[1], e[2]] == g)]
    [only] = query(["model"], ["model:gpt-4o"])
    assert only["group"] == ["gpt-4o"] and only["dataPoints"][0]["values"] == [
        total(lambda e: e[2] == "gpt-4o")
    ]
    [rest] = query([], ["NOT provider:openai", "description:=own-model"])
    assert rest["dataPoints"][0]["values"] == [total(lambda e: e[2] == "own-model")]
    assert query(["model"], ["model:no-such-model"]) == []


def test_unit_types_split_tokens_exactly_and_cost_in_full(server: support.LiveServer, team: Team) -> None:
    inside = [e for e in stored(server, team) if e[0] < datetime(2025, 11, 5, tzinfo=UTC)]
    request = {
        "timeRange": WHOLE_RANGE,
        "timeUnit": "TIME_UNIT_NONE",
        "values": [
            {"name": "usd", "aggregation": "AGGREGATION_SUM"},
            {"name": "tokens", "aggregation": "AGGREGATION_SUM"},
        ],
        "groupBy": ["model", "unit_type"],
    }
    series = ask(server, team, request)["timeSeries"]
    by_group = {tuple(s["group"]): s["dataPoints"][0]["values"] for s in series}
    for _provider, model in MODELS:
        mine = [e for e in inside if e[2] == model]
        tokens = {
            "Prompt text tokens": sum(e[3] - e[5] for e in mine),
            "Cached prompt text tokens": sum(e[5] for e in mine),
            "Completion text tokens": sum(e[4] for e in mine),
        }
        for unit_type, count in tokens.items():
            assert by_group[(model, unit_type)][1] == count, (model, unit_type)
        cost = sum(v[0] for (m, _), v in by_group.items() if m == model)
        assert cost == pytest.approx(sum(e[6] for e in mine) / UNITS_PER_USD, abs=1e-9)
    snake = {
        "analytics_request": {
            "time_range": {"start_time": "2025-10-30 00:00:00", "end_time": "2025-11-05 00:00:00"},
            "time_unit": 8,
            "values": [{"name": "usd", "aggregation": 1}],
            "group_by": ["unit_type"],
            "filters": ["unit_type:Completion text tokens"],
            "future_field": [1, 2],
        }
    }
    with server.client(team.read) as c:
        r = c.post(team.path("usage"), json=snake)
    assert r.status_code == 200, r.text
    [completion] = r.json()["timeSeries"]
    assert completion["group"] == ["Completion text tokens"]
    completion_usd = sum(v[0] for (_, u), v in by_group.items() if u == "Completion text tokens")
    assert completion["dataPoints"][0]["values"][0] == pytest.approx(completion_usd, abs=1e-9)
    with server.client(team.read) as c:
        twice = {"analyticsRequest": {**request, "time_unit": 8}}
        assert "given twice" in status_body(c.post(team.path("usage"), json=twice), 400, 3)


def test_exact_body_of_an_empty_range(server: support.LiveServer, team: Team) -> None:
    body = {
        "analyticsRequest": {
            "timeRange": {
                "startTime": "2024-01-01 00:00:00",
                "endTime": "2024-01-03 00:00:00",
                "timezone": "Etc/GMT",
            },
            "timeUnit": "TIME_UNIT_DAY",
            "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
        }
    }
    with server.client(team.read) as c:
        r = c.post(team.path("usage"), json=body)
        assert r.text == (
            '{"timeSeries":[{"group":[],"groupLabels":[],"dataPoints":['
            '{"timestamp":"2024-01-01T00:00:00Z","values":[0]},{"timestamp":"2024-01-02T00:00:00Z","values":[0]}]}],'
            '"limitReached":false}'
        )
        grouped = {"analyticsRequest": {**body["analyticsRequest"], "groupBy": ["description"]}}
        assert c.post(team.path("usage"), json=grouped).text == '{"timeSeries":[],"limitReached":false}'


def test_series_beyond_the_cap_set_limit_reached(server: support.LiveServer) -> None:
    team = new_team(server)
    support.grant(server, team.id, 100_000)
    moment = int(datetime(2025, 11, 1, tzinfo=UTC).timestamp() * 1000)
    ingest(
        server,
        team.id,
        [{"id": f"m{i}", "provider": "acme", "model": f"m{i:03d}", "input_tokens": 1, "output_tokens": 1,
          "cost_usd": "0.01", "timestamp": moment} for i in range(12)],
    )  # fmt: skip
    # 12 series x 10,000 hourly points = 120,000 cells > 100,000: only the first 10 series
    start = datetime(2025, 11, 1, tzinfo=UTC) - timedelta(hours=5000)
    request = {
        "timeRange": {"startTime": local(start, ZoneInfo("UTC")),
                      "endTime": local(start + timedelta(hours=10_000), ZoneInfo("UTC"))},
        "timeUnit": "TIME_UNIT_HOUR",
        "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
        "groupBy": ["model"],
    }  # fmt: skip
    body = ask(server, team, request)
    assert body["limitReached"] is True
    assert [s["group"][0] for s in body["timeSeries"]] == [f"m{i:03d}" for i in range(10)]


def test_bad_requests_are_400(server: support.LiveServer, team: Team) -> None:
    good = {
        "timeRange": {
            "startTime": "2025-11-01 00:00:00",
            "endTime": "2025-11-02 00:00:00",
            "timezone": "Etc/GMT",
        },
        "timeUnit": "TIME_UNIT_DAY",
        "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
    }

    def span(**time_range: str) -> dict[str, Any]:
        return {"analyticsRequest": {**good, "timeRange": {**good["timeRange"], **time_range}}}

    cases = [
        {},
        {"analyticsRequest": None},
        {"analyticsRequest": {**good, "timeRange": None}},
        {"analyticsRequest": {**good, "timeUnit": "TIME_UNIT_MINUTE"}},
        {"analyticsRequest": {**good, "timeUnit": "TIME_UNIT_INVALID"}},
        {"analyticsRequest": {**good, "timeUnit": "TIME_UNIT_WEEKLY"}},
        {"analyticsRequest": {**good, "values": []}},
        {"analyticsRequest": {**good, "values": [{"name": "usd", "aggregation": "AGGREGATION_P99"}]}},
        {"analyticsRequest": {**good, "values": [{"name": "latency", "aggregation": "AGGREGATION_SUM"}]}},
        {"analyticsRequest": {**good, "groupBy": ["request_ip"]}},
        {"analyticsRequest": {**good, "filters": ["usage:>100"]}},
        {"analyticsRequest": {**good, "filters": ["model"]}},
        {"analyticsRequest": {**good, "groupBy": ["unit_type"],
                              "values": [{"name": "usd", "aggregation": "AGGREGATION_COUNT"}]}},
        span(timezone="Mars/Olympus"),
        span(timezone="../../etc/passwd"),
        span(startTime="yesterday"),
        span(startTime="1969-12-31 23:59:59"),
        span(endTime="9999-12-31 23:59:59"),
        span(startTime="1" * 5000),
        {"analyticsRequest": {**good, "timeUnit": "1" * 5000}},
        span(startTime="2025-13-01 00:00"),
        span(endTime="2025-10-01 00:00:00"),
        span(endTime="2045-10-01 00:00:00"),
        {"analyticsRequest": {**good, "timeUnit": "TIME_UNIT_HOUR",
                              "timeRange": {**good["timeRange"], "endTime": "2027-01-01 00:00:00"}}},
        {"analyticsRequest": {**good, "timeUnit": "TIME_UNIT_HOUR", "timeRange": {
            **good["timeRange"], "endTime": "2025-12-15 00:00:00", "timezone": "Asia/Kolkata"}}},
    ]  # fmt: skip
    with server.client(team.read) as c:
        for body in cases:
            r = c.post(team.path("usage"), json=body)
            assert status_body(r, 400, 3), body
        broken = c.post(team.path("usage"), content=b"{", headers={"content-type": "application/json"})
        assert status_body(broken, 400, 3)
        assert c.post(team.path("usage"), json={"analyticsRequest": good}).status_code == 200


def keyed(server: support.LiveServer, team: Team) -> list[tuple[datetime, str, str, int]]:
    """(occurred_at, model, api key or "", cost) of the stored events, from their own columns."""
    rows = support.query(
        server.settings.database_url,
        "SELECT occurred_at, model, api_key_id, cost, metadata FROM usage_events WHERE account_id = :a",
        a=team.id,
    )
    out = []
    for at, model, api_key_id, cost, metadata in rows:
        moment = datetime.fromisoformat(at) if isinstance(at, str) else at
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        sent = ((json.loads(metadata) if isinstance(metadata, str) else metadata) or {}).get("api_key_id")
        assert api_key_id == (None if sent is None else str(sent))  # the column is the metadata's key
        out.append((moment, model, api_key_id or "", int(cost)))
    return out


@pytest.mark.parametrize(("zone_name", "unit_name", "unit", "start", "end"), [CASES[0], CASES[4], CASES[5]])
def test_grouped_by_api_key_agrees_with_the_stored_events(
    server: support.LiveServer,
    team: Team,
    zone_name: str,
    unit_name: str,
    unit: str,
    start: datetime,
    end: datetime,
) -> None:
    zone = ZoneInfo(zone_name)
    sums: dict[tuple[str, datetime], int] = defaultdict(int)
    for at, _model, api_key_id, cost in keyed(server, team):
        if start <= at < end:
            sums[(api_key_id, floor(at, zone, unit))] += cost
    body = ask(
        server,
        team,
        {
            "timeRange": time_range(start, end, zone),
            "timeUnit": unit_name,
            "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
            "groupBy": ["api_key_id"],
        },
    )
    assert [s["group"] for s in body["timeSeries"]] == [[""], ["4711"], ["key-a"], ["key-b"]]
    for series in body["timeSeries"]:
        assert series["groupLabels"] == series["group"]
        for point in series["dataPoints"]:
            stamp = datetime.fromisoformat(point["timestamp"].replace("Z", "+00:00"))
            assert point["values"] == [sums.get((series["group"][0], stamp), 0) / UNITS_PER_USD], stamp


def test_filters_on_api_key(server: support.LiveServer, team: Team) -> None:
    start, end = datetime(2025, 10, 30, 7, 15, tzinfo=UTC), datetime(2025, 11, 4, 22, 45, tzinfo=UTC)
    inside = [e for e in keyed(server, team) if start <= e[0] < end]

    def query(group_by: list[str], filters: list[str]) -> Any:
        return ask(
            server,
            team,
            {
                "time_range": {
                    "start_time": local(start, ZoneInfo("UTC")),
                    "end_time": local(end, ZoneInfo("UTC")),
                },
                "time_unit": "TIME_UNIT_NONE",
                "values": [
                    {"name": "usd", "aggregation": 1},
                    {"name": "usd", "aggregation": "AGGREGATION_COUNT"},
                ],
                "group_by": group_by,
                "filters": filters,
            },
        )["timeSeries"]

    def total(keep: Callable[[Any], bool]) -> list[float]:
        mine = [e for e in inside if keep(e)]
        return [sum(e[3] for e in mine) / UNITS_PER_USD, len(mine)]

    [only] = query([], ["api_key_id:key-a"])
    assert only["dataPoints"][0]["values"] == total(lambda e: e[2] == "key-a")
    [others] = query([], ["NOT api_key_id:key-a", "NOT api_key_id:=4711"])
    assert others["dataPoints"][0]["values"] == total(lambda e: e[2] not in ("key-a", "4711"))
    [keyless] = query([], ["api_key_id:"])
    assert keyless["dataPoints"][0]["values"] == total(lambda e: e[2] == "")
    series = query(["model", "api_key_id"], ["api_key_id:key-b"])
    assert [s["group"] for s in series] == sorted(
        [[m, "key-b"] for m in {e[1] for e in inside if e[2] == "key-b"}]
    )
    for s in series:
        assert s["dataPoints"][0]["values"] == total(lambda e, g=s["group"]: [e[1], e[2]] == g)
    assert query(["api_key_id"], ["api_key_id:no-such-key"]) == []


def test_api_key_by_unit_type_adds_up_to_the_key_cost(server: support.LiveServer, team: Team) -> None:
    inside = [e for e in keyed(server, team) if e[0] < datetime(2025, 11, 5, tzinfo=UTC)]
    request = {
        "timeRange": WHOLE_RANGE,
        "timeUnit": "TIME_UNIT_NONE",
        "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
        "groupBy": ["api_key_id", "unit_type"],
    }
    series = ask(server, team, request)["timeSeries"]
    assert {s["group"][1] for s in series} <= {
        "Prompt text tokens", "Cached prompt text tokens", "Completion text tokens", "Requests"
    }  # fmt: skip
    for key in ("", "4711", "key-a", "key-b"):
        usd = sum(s["dataPoints"][0]["values"][0] for s in series if s["group"][0] == key)
        assert usd == pytest.approx(sum(e[3] for e in inside if e[2] == key) / UNITS_PER_USD, abs=1e-9), key


def test_a_bad_api_key_in_metadata_rejects_the_event(server: support.LiveServer) -> None:
    team = new_team(server)
    token = support.create_token(server, team.id, "gateway")
    base = {
        "account_id": team.id,
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 1,
        "output_tokens": 1,
    }
    bad = [
        {"api_key_id": ["k"]},
        {"api_key_id": {"id": "k"}},
        {"api_key_id": True},
        {"api_key_id": "k" * 201},
    ]
    with server.client(token) as c:
        r = c.post(
            "/v1/gateway/usage",
            json={"events": [{**base, "id": f"b{i}", "metadata": m} for i, m in enumerate(bad)]},
        )
    assert r.status_code == 422, r.text  # every event of the batch was rejected
    assert r.json()["accepted"] == 0
    assert [x["field"] for x in r.json()["rejected"]] == ["metadata.api_key_id"] * len(bad)
