"""Request bodies on SQLite and PostgreSQL: every route reads at most 2 MiB before a 413, and
a JSON object that repeats a key is a 400 on the admin, Cloudflare and gateway APIs, so a
proxy (which may keep the first of two keys) and creditgate (orjson keeps the last) can never
read different requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditgate.api.responses import MAX_BODY_BYTES, repeated_key
from creditgate.errors import ValidationError
from creditgate.money import cents
from tests import support
from tests.cloudflare_support import funded_account, sandbox_charges

JSON_TYPE = {"content-type": "application/json"}
BIG = 50 * 1024 * 1024


def _chunks(total: int = BIG, size: int = 64 * 1024) -> Iterator[bytes]:
    """A streamed body (chunked, no Content-Length) of `total` spaces."""
    for _ in range(total // size):
        yield b" " * size


def _assert_413(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    assert r.json()["error"] == {
        "type": "payload_too_large",
        "message": f"request body exceeds {MAX_BODY_BYTES} bytes",
        "field": "body",
    }


def test_refund_route_answers_413_to_a_streamed_50_mb_body(server: support.LiveServer) -> None:
    account = support.create_account(server)
    path = f"/admin/v1/accounts/{account}/topups/topup_x/refund"
    with server.admin() as c:
        _assert_413(c.post(path, content=_chunks(), headers=JSON_TYPE))
        declared = c.post(path, content=b" " * (MAX_BODY_BYTES + 1), headers=JSON_TYPE)
        _assert_413(declared)
        # the server is fine afterwards: the same route still answers a normal request
        r = c.post(path, json={"amount": 1})
        assert r.status_code == 404 and "topup_x" in r.text


def test_idempotent_routes_answer_413_to_a_streamed_body(server: support.LiveServer) -> None:
    account = support.create_account(server)
    with server.admin() as c:
        headers = {**JSON_TYPE, "Idempotency-Key": "big-body"}
        _assert_413(c.post(f"/admin/v1/accounts/{account}/grants", content=_chunks(), headers=headers))
        r = c.post(f"/admin/v1/accounts/{account}/grants", json={"amount_cents": 5}, headers=headers)
        assert r.status_code == 201, r.text
    assert support.balance_units(server, account) == cents(5)


# Each route with a body that repeats a key: (path template, body, error field, envelope).
DUPLICATES: list[tuple[str, bytes]] = [
    ("top level", b'{"amount_cents": 1, "amount_cents": 100000}'),
    ("escaped key", b'{"amount_cents": 1, "amount\\u005fcents": 100000}'),
    ("nested", b'{"amount_cents": 1, "reason": "x", "x": {"a": 1, "a": 2}}'),
]


@pytest.mark.parametrize(("name", "body"), DUPLICATES, ids=[d[0] for d in DUPLICATES])
def test_admin_rejects_a_repeated_key_and_writes_nothing(
    server: support.LiveServer, database_url: str, name: str, body: bytes
) -> None:
    account = support.create_account(server)
    before = support.snapshot(database_url)
    with server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/grants", content=body, headers=JSON_TYPE)
    assert r.status_code == 400, (name, r.text)
    error = r.json()["error"]
    assert error["type"] == "invalid_request" and error["field"] == "body"
    assert "appears twice" in error["message"]
    assert support.snapshot(database_url) == before


def test_gateway_rejects_repeated_keys_in_usage_and_authorize(
    server: support.LiveServer, database_url: str
) -> None:
    account = support.create_account(server)
    support.grant(server, account, 100)
    token = support.create_token(server, account, "gateway")
    event = {
        "id": "dup-1",
        "account_id": account,
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 10,
        "output_tokens": 5,
    }
    inner = orjson.dumps(event)[:-1] + b', "cost_usd": "0", "cost_usd": "1000"}'
    outer = b'{"events": [], "events": [' + orjson.dumps(event) + b"]}"
    before = support.snapshot(database_url)
    with server.client(token) as c:
        for body in (inner.join([b'{"events": [', b"]}"]), outer):
            r = c.post("/v1/gateway/usage", content=body, headers=JSON_TYPE)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["field"] == "body" and "appears twice" in r.json()["error"]["message"]
        authorize = (
            b'{"account_id": "' + account.encode() + b'", "estimated_cost_usd": "0.01", '
            b'"estimated_cost_usd": "0.02", "request_id": "r1"}'
        )
        r = c.post("/v1/gateway/authorize", content=authorize, headers=JSON_TYPE)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == "body"
    assert support.snapshot(database_url) == before
    with server.client(token) as c:  # the same event, sent once, is fine
        r = c.post("/v1/gateway/usage", json={"events": [{**event, "cost_usd": "0"}]})
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text


def test_cloudflare_rejects_a_repeated_key_in_its_envelope(
    server: support.LiveServer, database_url: str
) -> None:
    account, token = funded_account(server)
    body = b'{"amount": 1000, "amount": 500000}'
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.post(f"/client/v4/accounts/{account}/ai-gateway/billing/topup", content=body, headers=JSON_TYPE)
    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["success"] is False and answer["result"] is None
    assert answer["errors"][0]["code"] == 1002 and "appears twice" in answer["errors"][0]["message"]
    assert sandbox_charges(database_url, account) == 0
    assert support.balance_units(server, account) == 0


def test_colons_in_strings_and_escaped_colons_are_not_mistaken_for_keys(server: support.LiveServer) -> None:
    account = support.create_account(server)
    with server.admin() as c:
        for reason in ("a:b::c", 'x": "y', "time 12:00"):
            r = c.post(f"/admin/v1/accounts/{account}/grants", json={"amount_cents": 1, "reason": reason})
            assert r.status_code == 201, r.text
            assert r.json()["reason"] == reason
        escaped = b'{"amount_cents": 1, "reason": "a\\u003ab"}'
        r = c.post(f"/admin/v1/accounts/{account}/grants", content=escaped, headers=JSON_TYPE)
        assert r.status_code == 201 and r.json()["reason"] == "a:b", r.text
    assert support.balance_units(server, account) == cents(4)


# --- the detector itself, against the standard library as the reference ---------------------

_TEXT = st.text(alphabet=st.sampled_from(["a", "b", ":", '"', "\\", "é", " ", "\x00"]), max_size=4)


def _encode_string(value: str, escape_all: bool) -> str:
    if not escape_all:
        return json.dumps(value, ensure_ascii=False)
    return '"' + "".join(f"\\u{ord(ch):04x}" for ch in value) + '"'


@st.composite
def _documents(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.sampled_from(["object", "array", "scalar"] if depth < 3 else ["scalar"]))
    if kind == "scalar":
        return draw(st.one_of(st.integers(-5, 10**20).map(str), _TEXT.map(json.dumps), st.just("null")))
    items = draw(st.lists(_documents(depth + 1), max_size=4))
    if kind == "array":
        return "[" + ",".join(items) + "]"
    keys = draw(st.lists(_TEXT, min_size=len(items), max_size=len(items)))
    pairs = [
        _encode_string(k, draw(st.booleans())) + draw(st.sampled_from([":", " : "])) + v
        for k, v in zip(keys, items, strict=True)
    ]
    return "{" + ",".join(pairs) + "}"


def _reference(body: bytes) -> bool:
    repeated = False

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        repeated = repeated or len({k for k, _ in pairs}) != len(pairs)
        return dict(pairs)

    json.loads(body, object_pairs_hook=hook)
    return repeated


@settings(max_examples=400, deadline=None)
@given(_documents())
def test_repeated_key_agrees_with_the_standard_library(text: str) -> None:
    body = text.encode()
    found = repeated_key(body, orjson.loads(body))
    assert (found is not None) == _reference(body), text


def test_repeated_key_names_the_key_and_handles_deep_documents() -> None:
    assert repeated_key(b'{"a": 1, "b": {"k:": 1, "k\\u003a": 2}}', None) is None  # scalars only
    body = b'{"a": 1, "b": {"k:": 1, "k\\u003a": 2}}'
    assert repeated_key(body, orjson.loads(body)) == "k:"
    deep = b'{"a":' * 300 + b"1" + b"}" * 300  # deeper than orjson re-serialises
    assert repeated_key(deep, orjson.loads(deep)) is None
    deep_repeat = b'{"a":' * 300 + b'{"z": 1, "z": 2}' + b"}" * 300
    assert repeated_key(deep_repeat, orjson.loads(deep_repeat)) == "z"
    # orjson reads 1000 levels, the standard library's check cannot: a 400, not a crash
    too_deep = b"[" * 1000 + b'{"a": 1}' + b"]" * 1000
    with pytest.raises(ValidationError, match="nested too deeply"):
        repeated_key(too_deep, orjson.loads(too_deep))
