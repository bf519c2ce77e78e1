"""The metering proxy through the official `openai` and `anthropic` SDKs, against a live
creditgate whose upstream is a fake on loopback reporting the usage each test chose. Every
charge is checked to the ledger unit: usage x price x (1 + markup), rounded half up once."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests import proxy_support as ps
from tests import support
from tests.limits_support import set_limit

# catalog list prices (USD per million tokens) from the packaged default catalog
GPT_4O = (Fraction("2.50"), Fraction("10.00"), Fraction("1.25"))
SONNET = (Fraction("3.00"), Fraction("15.00"), Fraction("0.30"))
OPENAI_MARKUP = Fraction(20)
ANTHROPIC_MARKUP = Fraction("12.5")


def expected_units(
    rates: tuple[Fraction, Fraction, Fraction], markup: Fraction, i: int, o: int, c: int
) -> int:
    """The exact charge in nano-dollars, rounded half up, computed independently."""
    inp, out, cached = rates
    usd = ((i - c) * inp + c * cached + o * out) / 1_000_000 * (1 + markup / 100)
    units = usd * 1_000_000_000
    return int(units) + (1 if units - int(units) >= Fraction(1, 2) else 0)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[ps.FakeUpstream, str]]:
    with ps.fake_upstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def proxy(
    database_url: str, upstream: tuple[ps.FakeUpstream, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[support.LiveServer]:
    settings = support.make_settings(database_url, tmp_path_factory.mktemp("proxy"))
    with ps.proxy_server(settings) as live:
        _, url = upstream
        ps.add_upstream(
            live,
            provider="openai",
            base_url=url + "/v1",
            api_key=ps.UPSTREAM_KEY,
            models=[
                "gpt-4o",
                {
                    "model": "gpt-4o-mini",
                    "alias": "house-mini",
                    "input_per_mtok_usd": "1",
                    "output_per_mtok_usd": "10",
                    "max_output_tokens": 1000,
                },
                {"model": "text-embedding-3-small", "input_per_mtok_usd": "0.02", "output_per_mtok_usd": "0"},
            ],
            markup_percent="20",
        )
        ps.add_upstream(
            live,
            provider="anthropic",
            base_url=url,
            api_key=ps.UPSTREAM_KEY,
            models=["claude-sonnet-4"],
            markup_percent="12.5",
        )
        yield live


@pytest.fixture
def fake(upstream: tuple[ps.FakeUpstream, str]) -> ps.FakeUpstream:
    upstream[0].reset()
    return upstream[0]


def customer(proxy: support.LiveServer, cents: int = 1000, scope: str = "api") -> tuple[str, str]:
    account = support.create_account(proxy)
    if cents:
        support.grant(proxy, account, cents)
    return account, support.create_token(proxy, account, scope)


def oa(proxy: support.LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url + "/openai/v1", api_key=key, max_retries=0)


def an(proxy: support.LiveServer, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.base_url + "/anthropic", api_key=key, max_retries=0)


def charged(proxy: support.LiveServer, account: str, cents: int = 1000) -> int:
    ps.wait_closed(proxy, account)
    return cents * 10_000_000 - support.balance_units(proxy, account)


def metadata(raw: Any) -> dict[str, Any]:
    return json.loads(raw) if isinstance(raw, str) else dict(raw or {})


MESSAGES = [{"role": "user", "content": "Say hello"}]


def test_chat_is_charged_usage_times_price_plus_markup(
    proxy: support.LiveServer, fake: ps.FakeUpstream
) -> None:
    fake.reset(input_tokens=1234, output_tokens=567, cached_tokens=200)
    account, key = customer(proxy)
    answer = oa(proxy, key).chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=1000)
    assert answer.choices[0].message.content == "Hello world"
    assert answer.usage is not None and answer.usage.prompt_tokens == 1234
    assert charged(proxy, account) == expected_units(GPT_4O, OPENAI_MARKUP, 1234, 567, 200)
    path, headers, body = fake.requests[0]
    assert path == "/v1/chat/completions" and body["model"] == "gpt-4o"
    assert headers["authorization"] == f"Bearer {ps.UPSTREAM_KEY}"
    [(i, o, c, cost, meta)] = ps.events_of(proxy, account)
    assert (i, o, c, cost) == (1234, 567, 200, expected_units(GPT_4O, OPENAI_MARKUP, 1234, 567, 200))
    assert "estimated" not in metadata(meta)
    assert metadata(meta)["api_key_id"].startswith("tok_")


def test_alias_and_per_model_prices(proxy: support.LiveServer, fake: ps.FakeUpstream) -> None:
    fake.reset(input_tokens=333, output_tokens=77)
    account, key = customer(proxy)
    oa(proxy, key).chat.completions.create(model="house-mini", messages=MESSAGES)
    assert fake.requests[0][2]["model"] == "gpt-4o-mini"
    # per-model sell prices are charged as they are: no markup
    assert charged(proxy, account) == expected_units(
        (Fraction(1), Fraction(10), Fraction(1)), Fraction(0), 333, 77, 0
    )


def test_chat_stream_is_charged_exactly_and_the_usage_chunk_only_goes_to_who_asked(
    proxy: support.LiveServer, fake: ps.FakeUpstream
) -> None:
    fake.reset(input_tokens=1001, output_tokens=333, cached_tokens=7)
    account, key = customer(proxy)
    client = oa(proxy, key)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello world"
    assert all(c.choices and getattr(c, "usage", None) is None for c in chunks)
    assert fake.requests[0][2]["stream_options"] == {"include_usage": True}
    first = expected_units(GPT_4O, OPENAI_MARKUP, 1001, 333, 7)
    assert charged(proxy, account) == first

    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    last = list(stream)[-1]
    assert last.usage is not None and last.usage.completion_tokens == 333
    assert charged(proxy, account) == 2 * first


def test_responses_and_embeddings(proxy: support.LiveServer, fake: ps.FakeUpstream) -> None:
    fake.reset(input_tokens=50, output_tokens=9, cached_tokens=0)
    account, key = customer(proxy)
    client = oa(proxy, key)
    answer = client.responses.create(model="gpt-4o", input="hi", max_output_tokens=100)
    assert answer.output_text == "Hello world"
    events = list(client.responses.create(model="gpt-4o", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    one = expected_units(GPT_4O, OPENAI_MARKUP, 50, 9, 0)
    assert charged(proxy, account) == 2 * one
    fake.reset(input_tokens=12)
    vectors = client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert len(vectors.data[0].embedding) == 3
    embed = expected_units((Fraction("0.02"), Fraction(0), Fraction("0.02")), Fraction(0), 12, 0, 0)
    assert charged(proxy, account) == 2 * one + embed


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_messages_are_charged_exactly(
    proxy: support.LiveServer, fake: ps.FakeUpstream, stream: bool
) -> None:
    fake.reset(input_tokens=1001, output_tokens=333, cached_tokens=7)
    account, key = customer(proxy)
    client = an(proxy, key)
    if stream:
        with client.messages.stream(model="claude-sonnet-4", max_tokens=500, messages=MESSAGES) as s:
            text = "".join(s.text_stream)
    else:
        text = (
            client.messages.create(model="claude-sonnet-4", max_tokens=500, messages=MESSAGES).content[0].text
        )
    assert text == "Hello world"
    assert fake.requests[0][1]["x-api-key"] == ps.UPSTREAM_KEY
    # 7,979,100 x 1.125 = 8,976,487.5 units: the half rounds up
    assert charged(proxy, account) == expected_units(SONNET, ANTHROPIC_MARKUP, 1001, 333, 7) == 8_976_488


def test_a_client_that_disconnects_after_k_chunks_pays_for_them(
    proxy: support.LiveServer, fake: ps.FakeUpstream
) -> None:
    k = 2
    fake.reset(chunks=["a", "b", "c", "d", "e"], hang_after=k)
    account, key = customer(proxy)
    stream = oa(proxy, key).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    got = []
    for chunk in stream:
        got.append(chunk.choices[0].delta.content)
        if len(got) == k + 1:  # the role chunk, then k content chunks
            break
    stream.close()
    assert got[1:] == ["a", "b"]
    assert fake.abandoned.wait(10), "the upstream's generation was not cancelled"
    [(status, _amount, captured)] = ps.wait_closed(proxy, account)
    assert status == "settled"
    [(i, o, _c, cost, meta)] = ps.events_of(proxy, account)
    assert o == k and i > 0
    assert metadata(meta)["estimated"] is True and metadata(meta)["cut"] == "client_disconnect"
    assert cost == captured == expected_units(GPT_4O, OPENAI_MARKUP, i, o, 0)
    assert charged(proxy, account) == cost


def test_anthropic_disconnect_uses_the_reported_input(
    proxy: support.LiveServer, fake: ps.FakeUpstream
) -> None:
    fake.reset(input_tokens=400, chunks=["x", "y", "z"], hang_after=1)
    account, key = customer(proxy)
    with an(proxy, key).messages.stream(model="claude-sonnet-4", max_tokens=500, messages=MESSAGES) as s:
        for text in s.text_stream:
            assert text == "x"
            break
    ps.wait_closed(proxy, account)
    [(i, o, _c, cost, meta)] = ps.events_of(proxy, account)
    # output: the larger of message_start's running count (1) and the one delta sent
    assert (i, o) == (400, 1) and metadata(meta)["estimated"] is True
    assert cost == expected_units(SONNET, ANTHROPIC_MARKUP, 400, 1, 0)


def test_an_upstream_that_breaks_mid_stream(proxy: support.LiveServer, fake: ps.FakeUpstream) -> None:
    fake.reset(chunks=["a", "b", "c", "d"], fail_after=3)
    account, key = customer(proxy)
    got = []
    with pytest.raises(openai.APIError):
        for chunk in oa(proxy, key).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            got.append(chunk.choices[0].delta.content)
    assert got[1:] == ["a", "b", "c"]
    ps.wait_closed(proxy, account)
    [(i, o, _c, cost, meta)] = ps.events_of(proxy, account)
    assert o == 3 and metadata(meta)["cut"] == "upstream_error" and metadata(meta)["estimated"] is True
    assert charged(proxy, account) == cost == expected_units(GPT_4O, OPENAI_MARKUP, i, 3, 0)


@pytest.mark.parametrize("status", [500, 503])
def test_an_upstream_5xx_is_a_502_and_charges_nothing(
    proxy: support.LiveServer, fake: ps.FakeUpstream, status: int
) -> None:
    fake.reset(status=status)
    account, key = customer(proxy)
    with pytest.raises(openai.InternalServerError) as caught:
        oa(proxy, key).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert caught.value.status_code == 502
    with pytest.raises(anthropic.APIStatusError) as refused:
        an(proxy, key).messages.create(model="claude-sonnet-4", max_tokens=10, messages=MESSAGES)
    assert refused.value.status_code == 502
    assert [r[0] for r in ps.wait_closed(proxy, account)] == ["voided", "voided"]
    assert charged(proxy, account) == 0


def test_an_upstream_timeout_is_a_504(
    proxy: support.LiveServer, upstream: tuple[ps.FakeUpstream, str]
) -> None:
    fake, _ = upstream
    fake.reset(barrier=2)  # never reached: the upstream keeps the call waiting
    account, key = customer(proxy)
    with proxy.admin() as c:
        ups = c.get("/admin/v1/upstreams").json()["upstreams"]
    assert all("api_key" not in u for u in ups)
    # a second upstream on the same fake with a 1 s read timeout
    added = ps.add_upstream(
        proxy,
        provider="openai",
        base_url=upstream[1] + "/v1",
        api_key=ps.UPSTREAM_KEY,
        models=[{"model": "gpt-4o", "alias": "slow-4o"}],
        read_timeout_seconds=1,
    )
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            oa(proxy, key).chat.completions.create(model="slow-4o", messages=MESSAGES)
        assert caught.value.status_code == 504
        assert [r[0] for r in ps.wait_closed(proxy, account)] == ["voided"]
    finally:
        fake.released.set()
        with proxy.admin() as c:
            assert c.delete(f"/admin/v1/upstreams/{added['id']}").status_code == 200


def test_wrong_keys_and_scopes_are_refused_in_each_apis_shape(
    proxy: support.LiveServer, fake: ps.FakeUpstream
) -> None:
    account, _ = customer(proxy)
    with pytest.raises(openai.AuthenticationError) as bad:
        oa(proxy, "cg_not-a-real-token").chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert bad.value.code == "invalid_api_key"
    with pytest.raises(anthropic.AuthenticationError):
        an(proxy, "cg_not-a-real-token").messages.create(
            model="claude-sonnet-4", max_tokens=5, messages=MESSAGES
        )
    for scope in ("read", "gateway", "write"):
        token = support.create_token(proxy, account, scope)
        with pytest.raises(openai.PermissionDeniedError):
            oa(proxy, token).chat.completions.create(model="gpt-4o", messages=MESSAGES)
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            an(proxy, token).messages.create(model="claude-sonnet-4", max_tokens=5, messages=MESSAGES)
        assert denied.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    with pytest.raises(openai.PermissionDeniedError):  # nor the operator token: it has no account
        oa(proxy, support.ADMIN_TOKEN).models.list()
    # and an api token is no gateway token
    api_token = support.create_token(proxy, account, "api")
    with proxy.client(api_token) as c:
        r = c.post(
            "/v1/gateway/authorize",
            json={"account_id": account, "request_id": "r1", "model": "gpt-4o", "max_output_tokens": 10},
        )
        assert r.status_code == 403
    assert fake.requests == []


def test_unknown_models_are_404s(proxy: support.LiveServer, fake: ps.FakeUpstream) -> None:
    account, key = customer(proxy)
    with pytest.raises(openai.NotFoundError) as missing:
        oa(proxy, key).chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert missing.value.code == "model_not_found"
    with pytest.raises(anthropic.NotFoundError):
        an(proxy, key).messages.create(
            model="gpt-4o", max_tokens=5, messages=MESSAGES
        )  # not an Anthropic model
    assert sorted(m.id for m in oa(proxy, key).models.list()) == [
        "gpt-4o",
        "house-mini",
        "text-embedding-3-small",
    ]
    assert oa(proxy, key).models.retrieve("house-mini").id == "house-mini"
    assert fake.requests == [] and ps.events_of(proxy, account) == []


def test_anthropic_models_list_in_anthropics_shape(proxy: support.LiveServer, fake: ps.FakeUpstream) -> None:
    _, key = customer(proxy)
    added = ps.add_upstream(
        proxy,
        provider="anthropic",
        base_url="http://127.0.0.1:9",
        api_key=ps.UPSTREAM_KEY,
        models=["claude-3-5-haiku", {"model": "claude-sonnet-4", "alias": "house-opus"}],
    )
    try:
        client = an(proxy, key)
        listed = list(client.models.list(limit=2))  # the SDK follows has_more / last_id
        assert [m.id for m in listed] == ["claude-3-5-haiku", "claude-sonnet-4", "house-opus"]
        assert all(m.type == "model" and m.display_name == m.id for m in listed)
        assert listed[0].created_at.isoformat() == added["created_at"]
        first = client.models.list(limit=2)
        assert (first.has_more, first.first_id, first.last_id) == (
            True,
            "claude-3-5-haiku",
            "claude-sonnet-4",
        )
        assert client.models.retrieve("house-opus").id == "house-opus"
        with proxy.client(key) as c:
            raw = c.get("/anthropic/v1/models", headers={"x-api-key": key}).json()
            assert set(raw) == {"data", "has_more", "first_id", "last_id"} and raw["has_more"] is False
            last = c.get("/anthropic/v1/models", params={"before_id": "house-opus", "limit": 1}).json()
            assert [m["id"] for m in last["data"]] == ["claude-sonnet-4"] and last["has_more"] is True
            bad = c.get("/anthropic/v1/models", params={"limit": 0})
            assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
        with pytest.raises(anthropic.NotFoundError):
            client.models.retrieve("gpt-4o")  # an OpenAI-family model
        assert "claude-sonnet-4" not in [m.id for m in oa(proxy, key).models.list()]
        account, _ = customer(proxy, cents=0)
        with pytest.raises(anthropic.PermissionDeniedError):
            an(proxy, support.create_token(proxy, account, "read")).models.list()
        with pytest.raises(anthropic.AuthenticationError):
            an(proxy, "cg_not-a-real-token").models.list()
    finally:
        with proxy.admin() as c:
            assert c.delete(f"/admin/v1/upstreams/{added['id']}").status_code == 200
    assert [m.id for m in an(proxy, key).models.list()] == ["claude-sonnet-4"]
    assert fake.requests == []


def test_model_calls_skip_fastapis_routing_but_keep_the_apps_middleware(
    proxy: support.LiveServer, fake: ps.FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = customer(proxy)
    body = {"model": "gpt-4o", "messages": MESSAGES, "max_tokens": 5}
    with proxy.client(key) as c:
        r = c.post("/openai/v1/chat/completions", json=body, headers={"x-request-id": "req-proxy-1"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-proxy-1"  # the access log's
        assert c.get("/openai/v1/chat/completions").status_code == 405  # other methods: the app's
        assert c.post("/openai/v1/chat/completions%00", json=body).status_code == 400  # the NUL check

        async def broken(*_: Any) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr("creditgate.proxy.relay.handle", broken)
        r = c.post("/openai/v1/chat/completions", json=body)
        assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
        r = c.post("/anthropic/v1/messages", json=body)
        assert r.status_code == 500 and r.json()["error"]["type"] == "api_error"


def test_no_credit_and_spending_limits_are_refused(proxy: support.LiveServer, fake: ps.FakeUpstream) -> None:
    _, key = customer(proxy, cents=0)
    with pytest.raises(openai.RateLimitError) as quota:
        oa(proxy, key).chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=10)
    assert quota.value.code == "insufficient_quota" and quota.value.status_code == 429
    with pytest.raises(anthropic.APIStatusError) as billing:
        an(proxy, key).messages.create(model="claude-sonnet-4", max_tokens=10, messages=MESSAGES)
    assert billing.value.status_code == 402
    assert billing.value.body["error"]["type"] == "billing_error"  # type: ignore[index]

    limited, key = customer(proxy)
    set_limit(proxy, limited, 1)  # one cent a day: below the worst case of 10,000 output tokens
    with pytest.raises(openai.RateLimitError) as limit:
        oa(proxy, key).chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=10_000)
    assert limit.value.code == "spending_limit_reached"
    assert fake.requests == []


def test_a_spending_limit_refusal_says_when_to_retry(
    proxy: support.LiveServer, fake: ps.FakeUpstream
) -> None:
    fake.reset(output_tokens=1000, input_tokens=0)
    account, key = customer(proxy)
    set_limit(proxy, account, 2)
    # 1,000 output tokens at $10/M: one cent spent; the next call's worst case is a bit more
    # than the cent left, yet fits the limit alone, so the refusal says when to retry
    oa(proxy, key).chat.completions.create(model="house-mini", messages=MESSAGES, max_tokens=1000)
    with httpx.Client(base_url=proxy.base_url, headers={"authorization": f"Bearer {key}"}) as c:
        r = c.post(
            "/openai/v1/chat/completions",
            json={"model": "house-mini", "messages": MESSAGES, "max_tokens": 1000},
        )
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.json()["error"]["code"] == "spending_limit_reached"


def test_the_upstream_key_never_leaves(
    proxy: support.LiveServer, fake: ps.FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account, key = customer(proxy)
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        seen.append(
            oa(proxy, key).chat.completions.create(model="gpt-4o", messages=MESSAGES).model_dump_json()
        )
        fake.key = "sk-another-key"  # the upstream now refuses creditgate's key
        try:
            with pytest.raises(openai.InternalServerError) as refused:
                oa(proxy, key).chat.completions.create(model="gpt-4o", messages=MESSAGES)
            seen.append(refused.value.response.text)
        finally:
            fake.key = ps.UPSTREAM_KEY
        fake.reset(chunks=["a", "b"], fail_after=1)
        with pytest.raises(openai.APIError) as broken:
            list(oa(proxy, key).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
        seen.append(str(broken.value))
        with proxy.admin() as c:
            seen.append(c.get("/admin/v1/upstreams").text)
        ps.wait_closed(proxy, account)
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert logged and ps.UPSTREAM_KEY not in logged
    assert all(ps.UPSTREAM_KEY not in text for text in seen)
    stored = support.query(proxy.settings.database_url, "SELECT api_key_encrypted FROM upstreams")
    assert stored and all(ps.UPSTREAM_KEY not in row[0] for row in stored)
