"""The console's and the usage page's HTTP behaviour, on SQLite and PostgreSQL, with a
browser-like client: forms need their CSRF token and write nothing without it, a credit form
sent twice posts once, bad query values are clear 400 pages, unknown accounts are 404 pages,
webhook deliveries show every attempt, and a portal session only ever sees its own usage."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from creditgate import jobs
from creditgate.accounts import service as accounts
from creditgate.clock import ManualClock, to_ms
from creditgate.notify import service as notify
from creditgate.workflows.context import Context
from tests import support
from tests.portal_support import csrf, portal_client, post_form, token_client
from tests.stripe_support import Sink, sink  # noqa: F401 - fixture
from tests.usage_support import run_at

FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


def test_console_forms_need_their_csrf_token(server: support.LiveServer, database_url: str) -> None:
    account = support.create_account(server)
    before = support.snapshot(database_url)
    with token_client(server, support.ADMIN_TOKEN, "console") as c:
        for tail, fields in (
            ("/credit", {"kind": "grant", "amount": "5", "reason": "x", "form_key": "k"}),
            ("/tokens", {"scope": "write"}),
            ("/portal-link", {}),
        ):
            r = c.post(f"/console/accounts/{account}{tail}", data=fields)
            assert r.status_code == 403 and "security token" in r.text
            r = c.post(f"/console/accounts/{account}{tail}", data={**fields, "csrf_token": "0" * 64})
            assert r.status_code == 403
    assert support.snapshot(database_url) == before


def test_a_credit_form_sent_twice_posts_once(server: support.LiveServer, database_url: str) -> None:
    account = support.create_account(server)
    with token_client(server, support.ADMIN_TOKEN, "console") as c:
        page = c.get(f"/console/accounts/{account}").text
        fields = {
            "kind": "grant",
            "amount": "7.25",
            "reason": "welcome",
            "form_key": FORM_KEY.search(page).group(1),  # type: ignore[union-attr]
            "csrf_token": csrf(page),
        }
        first = c.post(f"/console/accounts/{account}/credit", data=fields)
        again = c.post(f"/console/accounts/{account}/credit", data=fields)
        assert first.status_code == again.status_code == 303
        ledger = c.get(f"/console/accounts/{account}/ledger").text
        assert "already sent" in ledger and ledger.count("data-entry=") == 1
        other = c.post(f"/console/accounts/{account}/credit", data={**fields, "amount": "8"})
        assert other.status_code == 409 and "different request" in other.text
        bad = post_form(
            c,
            f"/console/accounts/{account}",
            f"/console/accounts/{account}/credit",
            {"kind": "grant", "amount": "0.001", "reason": "r"},
        )
        assert bad.status_code == 400 and "whole cents" in bad.text
    assert support.balance_units(server, account) == 725 * 10**7


def test_bad_values_and_unknown_accounts_are_clear_pages(server: support.LiveServer) -> None:
    account = support.create_account(server)
    with token_client(server, support.ADMIN_TOKEN, "console") as c:
        for path in (
            f"/console/accounts/{account}/ledger?before=abc",
            f"/console/accounts/{account}/ledger?before=-1",
            f"/console?after={'x' * 65}",
            f"/console?q={'x' * 201}",
            f"/console/accounts/{account}/usage.csv?day=2026-13-01",
        ):
            r = c.get(path)
            assert r.status_code == 400 and "<h1>" in r.text, path
        for tail in ("", "/ledger", "/webhooks", "/usage", "/usage.csv"):
            r = c.get(f"/console/accounts/no-such-account{tail}")
            assert r.status_code == 404 and "no account" in r.text, tail


def _usage(server: support.LiveServer, account: str, model: str, cost: str) -> None:
    event = {
        "id": f"{model}-1",
        "account_id": account,
        "model": model,
        "provider": "acme",
        "input_tokens": 100,
        "output_tokens": 10,
        "cost_usd": cost,
        "timestamp": to_ms(datetime.now(UTC) - timedelta(minutes=3)),
    }
    with server.admin() as c:
        assert c.post("/v1/gateway/usage", json={"events": [event]}).json()["rejected"] == []


def test_a_portal_session_sees_only_its_own_usage(server: support.LiveServer) -> None:
    mine, theirs = support.create_account(server), support.create_account(server)
    _usage(server, mine, "mine-model", "1.50")
    _usage(server, theirs, "their-model", "2.00")
    with portal_client(server, mine) as c:
        page = c.get("/portal/usage").text
        assert "mine-model" in page and "their-model" not in page
        rows = list(csv.reader(io.StringIO(c.get("/portal/usage.csv").text)))
        assert [r[1] for r in rows[1:]] == ["mine-model"] and rows[1][6] == "1.50"
        for query in (f"?account_id={theirs}", f"?account={theirs}"):
            assert "their-model" not in c.get("/portal/usage.csv" + query).text
        assert c.get("/console").headers.get("location") == "/console/sign-in"
    with token_client(server, support.ADMIN_TOKEN, "console") as c:
        r = c.get(f"/console/accounts/{theirs}/usage.csv")
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
        assert [row[1] for row in csv.reader(io.StringIO(r.text))][1:] == ["their-model"]


def test_webhook_deliveries_show_every_attempt(fresh_database_url: str, tmp_path: Path, sink: Sink) -> None:  # noqa: F811
    sink.statuses = [500]  # the first attempt fails, the retry succeeds
    now = datetime.now(UTC)

    async def emit_and_deliver(ctx: Context) -> str:
        clock = ManualClock(now)
        ctx.clock = clock
        async with ctx.db.write() as conn:
            await accounts.create_account(conn, "hooked", name="Hooked <i>Co</i>", mode="prepaid", now=now)
            await notify.create_endpoint(conn, sink.url, now)
            event_id = await notify.emit(conn, "hooked", "topup.succeeded", {"amount_cents": 500}, now)
        await jobs.run_once(ctx, ["deliver_webhooks"])
        clock.advance(hours=2)
        await jobs.run_once(ctx, ["deliver_webhooks"])
        return event_id

    event_id = run_at(fresh_database_url, now, emit_and_deliver)
    settings = support.make_settings(fresh_database_url, tmp_path)
    with support.live_server(settings) as server, token_client(server, support.ADMIN_TOKEN, "console") as c:
        page = c.get("/console/accounts/hooked/webhooks").text
    assert f'data-event="{event_id}"' in page and "topup.succeeded" in page
    assert "Hooked &lt;i&gt;Co&lt;/i&gt;" in page
    assert page.count('class="delivery"') == 1 and sink.url in page and ">succeeded<" in page
    attempts = re.findall(r'<span class="(ok|err)-text">([^<]*)</span>', page)
    assert attempts == [("ok", "succeeded"), ("err", "500"), ("ok", "200")]
