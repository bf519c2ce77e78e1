"""POST topup and topup/status through the official SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import cloudflare
import httpx
import pytest

from creditgate.clock import ManualClock
from creditgate.money import cents
from tests import support
from tests.cloudflare_support import (
    NOW,
    add_card,
    billing,
    clocked_server,
    funded_account,
    pdf_text,
    sandbox_charges,
    sdk,
)


@pytest.fixture(scope="module")
def clocked(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[support.LiveServer, ManualClock]]:
    with clocked_server(database_url, tmp_path_factory.mktemp("clocked")) as pair:
        yield pair


def _invoices(server: support.LiveServer, account: str, token: str) -> list[object]:
    return list(billing(server, token).invoice_history(account_id=account).invoices)


def test_topup_charges_the_card_credits_once_and_issues_a_paid_invoice(
    server: support.LiveServer, database_url: str
) -> None:
    account, token = funded_account(server)
    b = billing(server, token)
    before = b.credit_balance(account_id=account)
    assert before.balance == 0 and before.first_topup_success is False
    assert before.payment_method is not None and before.payment_method.last4 == "4242"

    result = b.topup.create(account_id=account, amount=5000)
    assert result.payment_intent_id.startswith("in_")
    assert result.client_secret is None and result.onboarding is False
    assert (result.brand, result.last4) == ("visa", "4242")
    assert (
        b.topup.status(account_id=account, payment_intent_id=result.payment_intent_id).status == "completed"
    )

    after = b.credit_balance(account_id=account)
    assert after.balance == 5000 and after.first_topup_success is True
    assert support.balance_units(server, account) == cents(5000)
    [invoice] = b.invoice_history(account_id=account).invoices
    assert invoice.id == result.payment_intent_id
    assert (invoice.status, invoice.amount_due, invoice.amount_paid, invoice.amount_remaining) == (
        "paid",
        5000,
        5000,
        0,
    )
    assert invoice.invoice_origin == "manual" and invoice.attempted is True
    text = pdf_text(invoice.invoice_pdf)
    assert "$50.00" in text and invoice.number in text and invoice.id in text
    assert sandbox_charges(database_url, account) == 1

    second = b.topup.create(account_id=account, amount=1500)
    assert second.payment_intent_id != result.payment_intent_id and second.onboarding is True
    assert b.credit_balance(account_id=account).balance == 6500
    with server.admin() as c:
        assert c.get("/admin/v1/reconcile").json()["ok"] is True


class _LoseFirstTopupResponse(httpx.BaseTransport):
    """Delivers the first POST topup to the server, then hides its answer from the SDK (a
    proxy 502 or a read timeout), as a flaky network would. The SDK then sends it again."""

    def __init__(self, how: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.how = how
        self.topups_sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/billing/topup"):
            self.topups_sent += 1
            if self.topups_sent == 1:
                response.read()
                response.close()
                if self.how == "timeout":
                    raise httpx.ReadTimeout("lost response", request=request)
                return httpx.Response(502, json={"errors": [{"code": 1, "message": "bad gateway"}]})
        return response


@pytest.mark.parametrize("how", ["502", "timeout"])
def test_sdk_retry_of_a_topup_does_not_charge_twice(
    server: support.LiveServer, database_url: str, how: str
) -> None:
    account, token = funded_account(server)
    transport = _LoseFirstTopupResponse(how)
    client = sdk(server, token, max_retries=2, http_client=httpx.Client(transport=transport))
    result = client.ai_gateway.billing.topup.create(account_id=account, amount=2500)
    assert transport.topups_sent == 2  # the SDK really sent it twice
    b = billing(server, token)
    [invoice] = b.invoice_history(account_id=account).invoices
    assert invoice.id == result.payment_intent_id and invoice.status == "paid"
    assert b.credit_balance(account_id=account).balance == 2500
    assert sandbox_charges(database_url, account) == 1


RETRY = {"x-stainless-retry-count": "1"}  # what the official SDKs send on their first retry


@pytest.mark.parametrize("copies", [{"Idempotency-Key": "one-purchase"}, RETRY], ids=["key", "sdk-retry"])
def test_concurrent_copies_of_one_topup_charge_once(
    server: support.LiveServer, database_url: str, copies: dict[str, str]
) -> None:
    account, token = funded_account(server)

    def send(_: int) -> str:
        b = billing(server, token)
        return str(b.topup.create(account_id=account, amount=1200, extra_headers=copies).payment_intent_id)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        ids = set(pool.map(send, range(6)))
    assert len(ids) == 1
    assert support.balance_units(server, account) == cents(1200)
    assert sandbox_charges(database_url, account) == 1


def test_dedupe_window_and_idempotency_key(
    clocked: tuple[support.LiveServer, ManualClock], database_url: str
) -> None:
    server, clock = clocked
    clock.now = NOW
    account, token = funded_account(server)
    b = billing(server, token)
    first = b.topup.create(account_id=account, amount=1000).payment_intent_id
    clock.advance(seconds=119)  # an SDK retry within the window is the same top-up
    assert b.topup.create(account_id=account, amount=1000, extra_headers=RETRY).payment_intent_id == first
    clock.advance(seconds=2)  # 121 s after the first: even a retry is a new top-up
    second = b.topup.create(account_id=account, amount=1000, extra_headers=RETRY).payment_intent_id
    assert second != first
    # With an Idempotency-Key, the key alone decides: same key replays, a new key is a new top-up.
    keyed = b.topup.create(account_id=account, amount=1000, extra_headers={"Idempotency-Key": "k1"})
    again = b.topup.create(account_id=account, amount=1000, extra_headers={"Idempotency-Key": "k1"})
    other = b.topup.create(account_id=account, amount=1000, extra_headers={"Idempotency-Key": "k2"})
    assert keyed.payment_intent_id == again.payment_intent_id != other.payment_intent_id
    with pytest.raises(cloudflare.ConflictError) as err:
        b.topup.create(account_id=account, amount=2000, extra_headers={"Idempotency-Key": "k1"})
    assert err.value.response.headers["x-should-retry"] == "false"
    assert support.balance_units(server, account) == cents(4000)
    assert sandbox_charges(database_url, account) == 4


def test_declined_card_is_402_nothing_credited_invoice_uncollectible(
    server: support.LiveServer, database_url: str
) -> None:
    account, token = funded_account(server, "4000000000000341")
    b = billing(server, token)
    with pytest.raises(cloudflare.APIStatusError) as err:
        b.topup.create(account_id=account, amount=5000)
    assert err.value.status_code == 402
    assert err.value.response.headers["x-should-retry"] == "false"
    assert err.value.errors[0].code == 1402 and "card_declined" in str(err.value.errors[0].message)
    assert support.balance_units(server, account) == 0
    [invoice] = b.invoice_history(account_id=account).invoices
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("uncollectible", 0, 5000)
    assert "Unpaid" in pdf_text(invoice.invoice_pdf)
    with pytest.raises(cloudflare.APIStatusError) as status_err:
        b.topup.status(account_id=account, payment_intent_id=invoice.id)
    assert status_err.value.status_code == 402
    assert b.credit_balance(account_id=account).first_topup_success is False
    with server.admin() as c:
        assert c.get("/admin/v1/reconcile").json()["ok"] is True


@pytest.mark.parametrize(
    ("card", "code"), [("4000000000000002", "card_declined"), ("4000000000009995", "insufficient_funds")]
)
def test_cards_declined_when_saved(server: support.LiveServer, card: str, code: str) -> None:
    account = support.create_account(server)
    with server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/cards", json={"card": card})
        assert r.status_code == 402 and code in r.text
        assert c.get(f"/admin/v1/accounts/{account}/cards").json() == {"cards": []}
        r = c.post(f"/admin/v1/accounts/{account}/cards", json={"card": "1234"})
        assert r.status_code == 400 and r.json()["error"]["field"] == "card"


def test_three_d_secure_top_up_is_pending_until_authenticated(server: support.LiveServer) -> None:
    account, token = funded_account(server, "4000002500003155")
    b = billing(server, token)
    pending = b.topup.create(account_id=account, amount=3000)
    assert pending.client_secret and pending.client_secret.startswith("pi_sbx_")
    assert b.topup.status(account_id=account, payment_intent_id=pending.payment_intent_id).status == "pending"
    assert b.credit_balance(account_id=account).balance == 0
    # A resent identical request (an SDK retry) returns the same pending top-up and secret.
    resent = b.topup.create(account_id=account, amount=3000, extra_headers=RETRY)
    assert resent.client_secret == pending.client_secret
    with httpx.Client(base_url=server.base_url) as c:
        assert (
            c.post("/sandbox/v1/authenticate", json={"client_secret": "pi_sbx_x_secret_y"}).status_code == 404
        )
        r = c.post("/sandbox/v1/authenticate", json={"client_secret": pending.client_secret})
        assert r.status_code == 200 and r.json()["status"] == "succeeded"
    assert (
        b.topup.status(account_id=account, payment_intent_id=pending.payment_intent_id).status == "completed"
    )
    assert b.credit_balance(account_id=account).balance == 3000
    assert b.invoice_history(account_id=account).invoices[0].status == "paid"

    failing = b.topup.create(account_id=account, amount=2000)
    with httpx.Client(base_url=server.base_url) as c:
        r = c.post(
            "/sandbox/v1/authenticate", json={"client_secret": failing.client_secret, "outcome": "fail"}
        )
        assert r.json()["status"] == "failed"
    with pytest.raises(cloudflare.APIStatusError) as err:
        b.topup.status(account_id=account, payment_intent_id=failing.payment_intent_id)
    assert err.value.status_code == 402 and "authentication" in str(err.value.errors[0].message)
    assert b.credit_balance(account_id=account).balance == 3000


def test_payment_method_choice_and_missing_card(server: support.LiveServer) -> None:
    account = support.create_account(server)
    token = support.create_token(server, account, "write")
    b = billing(server, token)
    with pytest.raises(cloudflare.NotFoundError) as err:
        b.topup.create(account_id=account, amount=1000)
    assert err.value.errors[0].source.pointer == "/payment_method_id"
    visa = add_card(server, account)["payment_method_id"]
    add_card(server, account, "5555555555554444")  # the new default
    balance = b.credit_balance(account_id=account)
    assert balance.payment_method.brand == "mastercard" and balance.has_default_payment_method is True
    assert b.topup.create(account_id=account, amount=1000).brand == "mastercard"
    chosen = b.topup.create(account_id=account, amount=1000, payment_method_id=visa)
    assert (chosen.brand, chosen.last4) == ("visa", "4242")
    with pytest.raises(cloudflare.NotFoundError):
        b.topup.create(account_id=account, amount=1000, payment_method_id="pm_sbx_not_mine")
    assert support.balance_units(server, account) == cents(2000)


def test_topup_and_status_validation(server: support.LiveServer) -> None:
    account, token = funded_account(server)
    other, other_token = funded_account(server)
    b = billing(server, token)
    for bad, pointer in [
        ({"amount": 999}, "/amount"),
        ({"amount": True}, "/amount"),
        ({"amount": 1000.5}, "/amount"),
        ({"amount": "5000"}, "/amount"),
        ({"amount": 10**12}, "/amount"),
        ({"amount": 1000, "payment_method_id": 5}, "/payment_method_id"),
    ]:
        with pytest.raises(cloudflare.BadRequestError) as err:
            b.topup.create(account_id=account, **bad)
        assert err.value.errors[0].source.pointer == pointer, bad
    with pytest.raises(cloudflare.BadRequestError) as err:
        b.topup.create(account_id=account, amount=1000, extra_body={"currency": "usd"})
    assert err.value.errors[0].source.pointer == "/currency"
    with pytest.raises(cloudflare.BadRequestError):
        b.topup.status(account_id=account, payment_intent_id="")
    with pytest.raises(cloudflare.NotFoundError):
        b.topup.status(account_id=account, payment_intent_id="in_unknown")
    theirs = billing(server, other_token).topup.create(account_id=other, amount=1000).payment_intent_id
    with pytest.raises(cloudflare.NotFoundError):
        b.topup.status(account_id=account, payment_intent_id=theirs)
    assert support.balance_units(server, account) == 0


def test_invoice_pdf_links_do_not_open_other_invoices(server: support.LiveServer) -> None:
    account, token = funded_account(server)
    b = billing(server, token)
    b.topup.create(account_id=account, amount=1000)
    b.topup.create(account_id=account, amount=2000)
    first, second = b.invoice_history(account_id=account).invoices
    assert "$20.00" in pdf_text(first.invoice_pdf) and "$10.00" in pdf_text(second.invoice_pdf)
    base, key = first.invoice_pdf.split("?key=")
    other_base = second.invoice_pdf.split("?key=")[0]
    for url in (base, base + "?key=", base + "?key=wrong", other_base + "?key=" + key):
        assert httpx.get(url).status_code == 404


def test_cli_saves_a_card_the_server_then_charges(server: support.LiveServer, tmp_path: Path) -> None:
    """The CLI and the server are separate processes: the sandbox's state is in the database."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "CREDITGATE_DATABASE_URL": server.settings.database_url,
        "CREDITGATE_DATA_DIR": str(tmp_path),
    }
    cli = [str(Path(sys.executable).parent / "creditgate")]
    account = support.new_account_id()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=120)

    assert run("accounts", "create", account).returncode == 0
    made = run("tokens", "create", account, "--scope", "write")
    assert made.returncode == 0, made.stderr
    import json

    token = json.loads(made.stdout)["token"]
    declined = run("cards", "add", account, "4000000000000002")
    assert declined.returncode == 2 and "card_declined" in declined.stderr
    saved = run("cards", "add", account, "4242 4242 4242 4242")
    assert saved.returncode == 0, saved.stderr
    assert json.loads(saved.stdout)["last4"] == "4242"
    b = billing(server, token)
    b.topup.create(account_id=account, amount=2000)
    assert b.credit_balance(account_id=account).balance == 2000


class _Unreachable:
    """The sandbox behind a network that loses the first charge before it arrives."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.fail_next = True

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def charge(self, request: object) -> object:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("processor unreachable")
        return await self.inner.charge(request)  # type: ignore[attr-defined]


def test_processor_outage_is_503_without_retry_and_resumes_once(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from creditgate.api import app as app_module
    from creditgate.payments.factory import make_processor

    monkeypatch.setattr(app_module, "make_processor", lambda *a: _Unreachable(make_processor(*a)))
    with clocked_server(database_url, tmp_path) as (server, _clock):
        account, token = funded_account(server)
        b = billing(server, token, max_retries=2)
        with pytest.raises(cloudflare.InternalServerError) as err:
            b.topup.create(account_id=account, amount=4000)
        assert err.value.status_code == 503 and err.value.response.headers["x-should-retry"] == "false"
        [invoice] = b.invoice_history(account_id=account).invoices
        assert invoice.id in str(err.value.errors[0].message) and invoice.status == "open"
        assert support.balance_units(server, account) == 0 and sandbox_charges(database_url, account) == 0
        assert b.topup.status(account_id=account, payment_intent_id=invoice.id).status == "completed"
        resent = b.topup.create(account_id=account, amount=4000, extra_headers=RETRY)
        assert resent.payment_intent_id == invoice.id
        assert support.balance_units(server, account) == cents(4000)
        assert sandbox_charges(database_url, account) == 1


def test_a_deliberate_second_topup_is_charged_and_an_sdk_retry_is_not(
    server: support.LiveServer, database_url: str
) -> None:
    """Two purchases of the same amount seconds apart are two purchases (the SDK sends
    x-stainless-retry-count: 0 on each); a real SDK retry (count > 0) is not charged again."""
    account, token = funded_account(server)
    b = billing(server, token)
    first = b.topup.create(account_id=account, amount=1100).payment_intent_id
    second = b.topup.create(account_id=account, amount=1100).payment_intent_id
    assert second != first
    assert sandbox_charges(database_url, account) == 2
    retried = b.topup.create(account_id=account, amount=1100, extra_headers=RETRY).payment_intent_id
    assert retried == second
    assert sandbox_charges(database_url, account) == 2
    assert support.balance_units(server, account) == cents(2200)
    assert [i.id for i in b.invoice_history(account_id=account).invoices] == [second, first]


def test_raw_posts_without_the_retry_header_are_two_purchases(
    server: support.LiveServer, database_url: str
) -> None:
    account, token = funded_account(server)
    path = f"/client/v4/accounts/{account}/ai-gateway/billing/topup"
    with server.client(token) as c:
        one = c.post(path, json={"amount": 1300})
        two = c.post(path, json={"amount": 1300})
        assert one.status_code == two.status_code == 200, (one.text, two.text)
        assert one.json()["result"]["payment_intent_id"] != two.json()["result"]["payment_intent_id"]
        assert sandbox_charges(database_url, account) == 2
        again = c.post(path, json={"amount": 1300}, headers=RETRY)
        assert again.status_code == 200, again.text
        assert again.json()["result"]["payment_intent_id"] == two.json()["result"]["payment_intent_id"]
        for not_a_retry in ("0", "abc", "-1", ""):
            c.post(path, json={"amount": 1300}, headers={"x-stainless-retry-count": not_a_retry})
    assert sandbox_charges(database_url, account) == 6
    assert support.balance_units(server, account) == cents(6 * 1300)


def test_a_retry_after_a_declined_first_attempt_is_a_new_attempt(
    server: support.LiveServer, database_url: str
) -> None:
    account, token = funded_account(server, "4000000000000341")  # saves, then declines every charge
    b = billing(server, token)
    with pytest.raises(cloudflare.APIStatusError) as err:
        b.topup.create(account_id=account, amount=1000)
    assert err.value.status_code == 402
    with pytest.raises(cloudflare.APIStatusError):
        b.topup.create(account_id=account, amount=1000, extra_headers=RETRY)
    assert sandbox_charges(database_url, account) == 2  # a failed top-up is never replayed
    assert support.balance_units(server, account) == 0
