"""Bad input over HTTP: every case gets a clear 4xx, nothing is written, nothing is a 500."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditgate.accounts.principal import OPERATOR
from creditgate.errors import CreditgateError
from creditgate.metering import service as metering
from creditgate.metering.events import EVENT_FIELDS
from creditgate.money import cents
from tests import support

USAGE = "/v1/gateway/usage"


def _event(account_id: str, event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "account_id": account_id,
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 10,
        "output_tokens": 5,
        **extra,
    }


@pytest.fixture
def account(server: support.LiveServer) -> str:
    account_id = support.create_account(server)
    support.grant(server, account_id, 500)
    return account_id


RAW_BODIES: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("malformed JSON", b'{"events": [', {}, 400, "body"),
    ("trailing garbage", b'{"events": []} x', {}, 400, "body"),
    ("empty body", b"", {}, 400, "body"),
    ("whitespace body", b"  \n", {}, 400, "body"),
    ("array body", b"[]", {}, 400, "body"),
    ("string body", b'"events"', {}, 400, "body"),
    ("number body", b"42", {}, 400, "body"),
    ("null body", b"null", {}, 400, "body"),
    ("NaN", b'{"events": NaN}', {}, 400, "body"),
    ("lone surrogate", b'{"events": ["\\ud800"]}', {}, 400, "body"),
    ("raw control char", b'{"events": ["a\x01b"]}', {}, 400, "body"),
    ("not UTF-8", b'{"events": ["\xff\xfe"]}', {}, 400, "body"),
    ("nesting bomb", b"[" * 5000 + b"]" * 5000, {}, 400, "body"),
    ("unknown top-level field", b'{"events": [], "extra": 1}', {}, 400, "extra"),
    ("events not a list", b'{"events": {"id": "x"}}', {}, 400, "events"),
    ("events missing", b"{}", {}, 400, "events"),
    ("form content", b"events=1", {"content-type": "application/x-www-form-urlencoded"}, 400, "body"),
    ("octet-stream", b'{"events": []}', {"content-type": "application/octet-stream"}, 415, "body"),
    ("xml content", b"<events/>", {"content-type": "application/xml"}, 415, "body"),
    ("multipart", b"--x--", {"content-type": "multipart/form-data; boundary=x"}, 415, "body"),
]


@pytest.mark.parametrize(
    ("name", "body", "headers", "status", "field"), RAW_BODIES, ids=[c[0] for c in RAW_BODIES]
)
def test_malformed_bodies_get_a_clear_4xx_and_write_nothing(
    server: support.LiveServer,
    database_url: str,
    account: str,
    name: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    field: str,
) -> None:
    token = support.create_token(server, account, "gateway")
    before = support.snapshot(database_url)
    with server.client(token) as c:
        r = c.post(USAGE, content=body, headers={"content-type": "application/json", **headers})
    assert r.status_code == status, (name, r.text)
    error = r.json()["error"]
    assert error["field"] == field and error["message"]
    assert support.snapshot(database_url) == before


def test_oversized_batch_and_body(server: support.LiveServer, database_url: str, account: str) -> None:
    before = support.snapshot(database_url)
    with server.admin() as c:
        r = c.post(USAGE, json={"events": [_event(account, f"e{i}") for i in range(1001)]})
        assert r.status_code == 400 and r.json()["error"]["field"] == "events"
        assert "1000" in r.json()["error"]["message"]
        huge = b'{"events": [], "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
        r = c.post(USAGE, content=huge, headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text

        def chunks() -> Any:
            for _ in range(40):
                yield b" " * 100_000
            yield b"{}"

        r = c.post(USAGE, content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
    assert support.balance_units(server, account) == cents(500)
    assert support.snapshot(database_url) == before
    with server.admin() as c:  # exactly 1000 is fine
        r = c.post(USAGE, json={"events": [_event(account, f"ok{i}", cost_usd="0") for i in range(1000)]})
        assert r.status_code == 200 and r.json()["accepted"] == 1000


BAD_EVENTS: list[tuple[str, dict[str, Any], str]] = [
    ("string tokens", {"input_tokens": "10"}, "input_tokens"),
    ("float tokens", {"output_tokens": 1.5}, "output_tokens"),
    ("bool tokens", {"input_tokens": True}, "input_tokens"),
    ("bool output tokens", {"output_tokens": False}, "output_tokens"),
    ("negative tokens", {"input_tokens": -1}, "input_tokens"),
    ("negative cached", {"cached_tokens": -5}, "cached_tokens"),
    ("cached > input", {"cached_tokens": 11}, "cached_tokens"),
    ("huge tokens", {"input_tokens": 10**13}, "input_tokens"),
    ("u64 tokens", {"output_tokens": 2**64 - 1}, "output_tokens"),
    ("beyond u64 tokens", {"output_tokens": 10**30}, "output_tokens"),
    ("missing tokens", {"input_tokens": None}, "input_tokens"),
    ("unknown model", {"model": "no-such-model", "provider": None}, "model"),
    ("unknown provider/model", {"provider": "nobody"}, "model"),
    ("model not a string", {"model": 5}, "model"),
    ("empty model", {"model": ""}, "model"),
    ("long model", {"model": "m" * 201}, "model"),
    ("NUL in model", {"model": "gpt\x004o"}, "model"),
    ("NUL in id", {"id": "a\x00b"}, "id"),
    ("id not a string", {"id": 7}, "id"),
    ("missing id", {"id": None}, "id"),
    ("cost_usd number", {"cost_usd": 0.5}, "cost_usd"),
    ("cost_usd exponent", {"cost_usd": "1e3"}, "cost_usd"),
    ("cost_usd negative", {"cost_usd": "-1"}, "cost_usd"),
    ("cost_usd too precise", {"cost_usd": "0.0000000001"}, "cost_usd"),
    ("cost_usd huge", {"cost_usd": "99999999999"}, "cost_usd"),
    ("cost_usd giant exponent", {"cost_usd": "1e999999999"}, "cost_usd"),
    ("timestamp string", {"timestamp": "2026-01-01"}, "timestamp"),
    ("timestamp bool", {"timestamp": True}, "timestamp"),
    ("timestamp seconds", {"timestamp": 1_700_000_000}, "timestamp"),
    ("timestamp huge", {"timestamp": 2**63}, "timestamp"),
    ("metadata list", {"metadata": [1]}, "metadata"),
    ("metadata too big", {"metadata": {"k": "x" * 5000}}, "metadata"),
    ("metadata NUL", {"metadata": {"k": "\x00"}}, "metadata"),
    ("metadata NUL key", {"metadata": {"\x00": 1}}, "metadata"),
    ("metadata too deep", {"metadata": orjson.loads(b'{"a":' * 300 + b"1" + b"}" * 300)}, "metadata"),
    ("unknown field", {"tokens": 5}, "tokens"),
    ("bad account id", {"account_id": "no spaces allowed"}, "account_id"),
    ("account id not a string", {"account_id": 12}, "account_id"),
]


@pytest.mark.parametrize(("name", "change", "field"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_each_bad_event_is_rejected_alone_naming_its_field(
    server: support.LiveServer, database_url: str, account: str, name: str, change: dict[str, Any], field: str
) -> None:
    bad = {k: v for k, v in {**_event(account, "bad"), **change}.items() if v is not None}
    before = support.snapshot(database_url)
    with server.admin() as c:
        r = c.post(USAGE, json={"events": [bad]})
        assert r.status_code == 422, (name, r.text)
        assert r.json() == {
            "accepted": 0,
            "duplicates": 0,
            "rejected": [{"index": 0, "error": r.json()["rejected"][0]["error"], "field": field}],
        }
        assert support.snapshot(database_url) == before
        # next to a good event, only the bad one is left out
        r = c.post(USAGE, json={"events": [_event(account, "good-" + name), bad]})
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1 and [x["index"] for x in r.json()["rejected"]] == [1]
    after = support.snapshot(database_url)
    assert after["usage_events"] == before["usage_events"] + 1


def test_non_object_events_and_unknown_accounts(server: support.LiveServer, database_url: str) -> None:
    missing = support.new_account_id()
    before = support.snapshot(database_url)
    with server.admin() as c:
        r = c.post(USAGE, json={"events": [None, 1, "x", [], _event(missing, "e1")]})
    assert r.status_code == 422
    assert [(x["index"], x["field"]) for x in r.json()["rejected"]] == [
        (0, "event"),
        (1, "event"),
        (2, "event"),
        (3, "event"),
        (4, "account_id"),
    ]
    assert support.snapshot(database_url) == before


def test_url_and_method_errors(server: support.LiveServer, database_url: str, account: str) -> None:
    before = support.snapshot(database_url)
    with server.admin() as c:
        assert c.get(USAGE).status_code == 405
        assert c.post("/v1/gateway/nothing-here", json={}).status_code == 404
        r = c.get("/admin/v1/accounts/abc%00def")
        assert r.status_code == 400 and r.json()["error"]["field"] == "url"
        assert c.get("/admin/v1/accounts?after=%00").status_code == 400
        assert c.get(f"/admin/v1/accounts/{account}/ledger?before_id=99999999999999999999").status_code == 400
        assert c.get(f"/admin/v1/accounts/{account}/ledger?limit=abc").status_code == 400
        assert c.get("/admin/v1/accounts/" + "x" * 5000).status_code == 404
        assert c.post(f"/admin/v1/accounts/{account}/tokens/%00", json={}).status_code in (400, 405)
    assert support.snapshot(database_url) == before


ADMIN_CASES: list[tuple[str, str, Any, int, str]] = [
    ("grant bool", "grants", {"amount_cents": True}, 400, "amount_cents"),
    ("grant string", "grants", {"amount_cents": "5"}, 400, "amount_cents"),
    ("grant float", "grants", {"amount_cents": 5.0}, 400, "amount_cents"),
    ("grant zero", "grants", {"amount_cents": 0}, 400, "amount_cents"),
    ("grant negative", "grants", {"amount_cents": -5}, 400, "amount_cents"),
    ("grant huge", "grants", {"amount_cents": 2**64 - 1}, 400, "amount_cents"),
    (
        "grant past expiry",
        "grants",
        {"amount_cents": 5, "expires_at": "2001-01-01T00:00:00Z"},
        400,
        "expires_at",
    ),
    (
        "grant naive expiry",
        "grants",
        {"amount_cents": 5, "expires_at": "2999-01-01T00:00:00"},
        400,
        "expires_at",
    ),
    ("grant bad expiry", "grants", {"amount_cents": 5, "expires_at": "soon"}, 400, "expires_at"),
    ("grant unknown field", "grants", {"amount_cents": 5, "currency": "EUR"}, 400, "currency"),
    ("grant NUL reason", "grants", {"amount_cents": 5, "reason": "a\x00"}, 400, "body"),
    ("grant not object", "grants", [5], 400, "body"),
    ("adjust zero", "adjustments", {"amount_cents": 0, "reason": "x"}, 400, "amount_cents"),
    ("adjust no reason", "adjustments", {"amount_cents": 5}, 400, "reason"),
    ("adjust huge", "adjustments", {"amount_cents": -(10**15), "reason": "x"}, 400, "amount_cents"),
    ("token bad scope", "tokens", {"scope": "admin"}, 400, "scope"),
    ("token no scope", "tokens", {}, 400, "scope"),
]


@pytest.mark.parametrize(
    ("name", "path", "body", "status", "field"), ADMIN_CASES, ids=[c[0] for c in ADMIN_CASES]
)
def test_admin_bad_input(
    server: support.LiveServer,
    database_url: str,
    account: str,
    name: str,
    path: str,
    body: Any,
    status: int,
    field: str,
) -> None:
    before = support.snapshot(database_url)
    with server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/{path}", json=body)
    assert r.status_code == status, (name, r.text)
    assert r.json()["error"]["field"] == field
    assert support.snapshot(database_url) == before


def test_admin_account_creation_bad_input(server: support.LiveServer, database_url: str) -> None:
    before = support.snapshot(database_url)
    cases = [
        ({"id": "has space"}, "id"),
        ({"id": ""}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"id": 5}, "id"),
        ({}, "id"),
        ({"id": support.new_account_id(), "mode": "free"}, "mode"),
        ({"id": support.new_account_id(), "postpaid_limit_cents": -1}, "postpaid_limit_cents"),
        ({"id": support.new_account_id(), "postpaid_limit_cents": 10**20}, "postpaid_limit_cents"),
        ({"id": support.new_account_id(), "name": "n" * 201}, "name"),
        ({"id": support.new_account_id(), "color": "red"}, "color"),
    ]
    with server.admin() as c:
        for body, field in cases:
            r = c.post("/admin/v1/accounts", json=body)
            assert r.status_code == 400 and r.json()["error"]["field"] == field, (body, r.text)
        existing = support.create_account(server)
        before = support.snapshot(database_url)
        r = c.post("/admin/v1/accounts", json={"id": existing})
        assert r.status_code == 409
        for missing in ("tokens", "grants"):
            r = c.post(
                f"/admin/v1/accounts/{support.new_account_id()}/{missing}",
                json={"scope": "read"} if missing == "tokens" else {"amount_cents": 1},
            )
            assert r.status_code == 404, r.text
    assert support.snapshot(database_url) == before


def test_balance_bound_rejects_and_writes_nothing(server: support.LiveServer, database_url: str) -> None:
    account = support.create_account(server)
    with server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/grants", json={"amount_cents": 90_000_000_000})
        assert r.status_code == 201
        before = support.snapshot(database_url)
        r = c.post(f"/admin/v1/accounts/{account}/grants", json={"amount_cents": 20_000_000_000})
        assert r.status_code == 400 and r.json()["error"]["field"] == "amount"
    assert support.snapshot(database_url) == before


# --- fuzz: whatever JSON arrives at the usage endpoint, the answer is never a 5xx -----------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["gpt-4o", "openai", "0.001", "1e5", "-1", "\x00", ""]),
)
_json = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
_FIELDS = sorted(EVENT_FIELDS)


def _events(account: str) -> st.SearchStrategy[Any]:
    event = st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(st.text(max_size=8), _scalars),
            "account_id": st.sampled_from([account, "zz", 5, None]),
            "model": st.sampled_from(["gpt-4o", "gpt-4o-mini", "unknown", "", 1]),
            "provider": st.sampled_from(["openai", "anthropic", None, 3]),
            "input_tokens": _scalars,
            "output_tokens": _scalars,
            "cached_tokens": _scalars,
            "cost_usd": _scalars,
            "timestamp": st.one_of(_scalars, st.integers(0, 5 * 10**12)),
            "metadata": _json,
        },
    )
    return st.one_of(st.lists(st.one_of(event, _json), max_size=5), _json)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_usage_endpoint_never_answers_5xx(server: support.LiveServer, data: st.DataObject) -> None:
    account = _FUZZ_ACCOUNT.setdefault(server.base_url, support.create_account(server))
    body = data.draw(
        st.one_of(
            st.fixed_dictionaries({"events": _events(account)}),
            st.dictionaries(st.sampled_from(["events", *_FIELDS]), _json, max_size=3),
            _json,
        )
    )
    raw = json.dumps(body, allow_nan=False).encode()
    with server.admin() as c:
        r = c.post(USAGE, content=raw, headers={"content-type": "application/json"})
    assert r.status_code < 500, (body, r.text)
    assert r.headers["content-type"].startswith("application/json")


_FUZZ_ACCOUNT: dict[str, str] = {}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_fuzz_raw_bytes_never_answer_5xx(server: support.LiveServer, body: bytes) -> None:
    with server.admin() as c:
        r = c.post(USAGE, content=body, headers={"content-type": "application/json"})
        assert r.status_code < 500, (body, r.text)
        r = c.post("/admin/v1/accounts", content=body, headers={"content-type": "application/json"})
        assert r.status_code < 500, (body, r.text)


def test_curl_default_content_type_is_read_as_json(server: support.LiveServer, account: str) -> None:
    body = json.dumps({"events": [_event(account, "curl-d")]}).encode()
    with server.admin() as c:
        for content_type in ("application/x-www-form-urlencoded", "text/plain; charset=utf-8", None):
            headers = {"content-type": content_type} if content_type else {}
            r = c.post(USAGE, content=body, headers=headers)
            assert r.status_code == 200, r.text
    assert support.balance_units(server, account) < cents(500)


def test_idempotency_key_replays_and_conflicts(
    server: support.LiveServer, database_url: str, account: str
) -> None:
    path = f"/admin/v1/accounts/{account}/grants"
    with server.admin() as c:
        first = c.post(path, json={"amount_cents": 7}, headers={"Idempotency-Key": f"k-{account}"})
        again = c.post(path, json={"amount_cents": 7}, headers={"Idempotency-Key": f"k-{account}"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
        before = support.snapshot(database_url)
        other = c.post(path, json={"amount_cents": 8}, headers={"Idempotency-Key": f"k-{account}"})
        assert other.status_code == 409 and other.json()["error"]["field"] == "Idempotency-Key"
        assert c.post(path, json={"amount_cents": 8}, headers={"Idempotency-Key": ""}).status_code == 400
    assert support.snapshot(database_url) == before
    assert support.balance_units(server, account) == cents(507)


@settings(max_examples=200, deadline=None)
@given(events=_events("0123456789abcdef0123456789abcdef"), chunk=st.integers(1, 4))
def test_parsing_that_yields_to_the_loop_gives_the_same_answer(events: Any, chunk: int) -> None:
    """The endpoint parses in chunks between yields; the answer must be parse_batch's exactly."""
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def outcome(run: Any) -> Any:
        try:
            return run()
        except CreditgateError as exc:
            return type(exc), exc.message, exc.field

    whole = outcome(lambda: metering.parse_batch(events, OPERATOR, now))
    chunked = outcome(lambda: asyncio.run(metering.parse_batch_yielding(events, OPERATOR, now, chunk=chunk)))
    assert chunked == whole
