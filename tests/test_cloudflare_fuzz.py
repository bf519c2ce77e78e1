"""Arbitrary bodies and query strings never crash the Cloudflare API (no 5xx, always the envelope)."""

from __future__ import annotations

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import support
from tests.cloudflare_support import add_card

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
FIELDS = {
    "topup": ["amount", "payment_method_id"],
    "topup/status": ["payment_intent_id"],
    "topup/config": ["amount", "threshold"],
    "spending-limit": ["amount", "duration", "strategy"],
}
field_values = st.one_of(
    values,
    st.integers(min_value=-10, max_value=10**9),
    st.sampled_from(["daily", "monthly", "fixed", "sliding", "pm_x", "in_x", ""]),
)


def bodies(path: str) -> st.SearchStrategy[object]:
    """Mostly objects made of the endpoint's own fields (so values get validated), sometimes
    an extra key or a body of another JSON type."""
    own = st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS[path], field_values))
    extra = st.fixed_dictionaries({"x": values}, optional=dict.fromkeys(FIELDS[path], field_values))
    return st.one_of(own, own, own, extra, values)


query_values = st.one_of(st.text(max_size=20), st.integers().map(str), st.floats().map(repr))
queries = st.dictionaries(
    st.sampled_from(["value_grouping_window", "start_time", "end_time", "type", "page", "per_page"]),
    query_values,
    max_size=4,
)
POSTS = list(FIELDS)
GETS = [
    "credit-balance",
    "usage-history",
    "invoice-history",
    "invoice-preview",
    "topup/config",
    "spending-limit",
]


def _check(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    body = r.json()
    assert isinstance(body, dict) and set(body) >= {"errors", "messages", "result", "success"}
    assert isinstance(body["result"], dict) if r.status_code < 300 else body["result"] is None


def test_arbitrary_input_is_a_clean_4xx_or_a_success(server: support.LiveServer) -> None:
    account = support.create_account(server)
    add_card(server, account)
    token = support.create_token(server, account, "write")
    base = f"/client/v4/accounts/{account}/ai-gateway/billing/"
    client = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(path=st.sampled_from(POSTS), data=st.data())
    def posts(path: str, data: st.DataObject) -> None:
        body = data.draw(bodies(path))
        content = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS) if _serializable(body) else b"{"
        _check(client.post(base + path, content=content, headers={"Content-Type": "application/json"}))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(path=st.sampled_from(GETS), params=queries)
    def gets(path: str, params: dict[str, str]) -> None:
        _check(client.get(base + path, params=params))

    try:
        posts()
        gets()
    finally:
        client.close()
    with server.admin() as c:
        assert c.get("/admin/v1/reconcile").json()["ok"] is True


def _serializable(body: object) -> bool:
    try:
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True
