"""Credentials, permissions and the error envelope of the Cloudflare billing API."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import cloudflare
import httpx
import pytest

from tests import support
from tests.cloudflare_support import billing, funded_account, sdk


def _writes(b: Any, account: str) -> list[Callable[[], object]]:
    return [
        lambda: b.topup.create(account_id=account, amount=1000),
        lambda: b.topup.status(account_id=account, payment_intent_id="in_x"),
        lambda: b.topup.config.create(account_id=account, amount=5000, threshold=500),
        lambda: b.topup.config.delete(account_id=account),
        lambda: b.spending_limit.create(account_id=account, amount=1000, duration="daily", strategy="fixed"),
        lambda: b.spending_limit.delete(account_id=account),
    ]


def _reads(b: Any, account: str) -> list[Callable[[], object]]:
    return [
        lambda: b.credit_balance(account_id=account),
        lambda: b.usage_history(account_id=account, value_grouping_window="day"),
        lambda: b.invoice_history(account_id=account),
        lambda: b.invoice_preview(account_id=account),
        lambda: b.topup.config.get(account_id=account),
        lambda: b.spending_limit.get(account_id=account),
    ]


def test_missing_credentials_are_400_9106(server: support.LiveServer) -> None:
    account = support.create_account(server)
    with pytest.raises(cloudflare.BadRequestError) as err:
        sdk(server, api_email="me@example.com").ai_gateway.billing.credit_balance(account_id=account)
    assert err.value.errors[0].code == 9106
    path = f"/client/v4/accounts/{account}/ai-gateway/billing/credit-balance"
    with httpx.Client(base_url=server.base_url) as c:
        for headers in ({}, {"X-Auth-Key": "k"}, {"Authorization": "Basic abc"}):
            r = c.get(path, headers=headers)
            assert r.status_code == 400 and r.json() == {
                "errors": [
                    {"code": 9106, "message": "Missing X-Auth-Key, X-Auth-Email or Authorization headers"}
                ],
                "messages": [],
                "result": None,
                "success": False,
            }


def test_invalid_token_is_403_9109(server: support.LiveServer) -> None:
    account = support.create_account(server)
    for token in ("cgt_not-a-real-token", "garbage"):
        with pytest.raises(cloudflare.PermissionDeniedError) as err:
            billing(server, token).credit_balance(account_id=account)
        assert err.value.errors[0].code == 9109


def test_email_and_key_authenticate_like_a_token(server: support.LiveServer) -> None:
    account, token = funded_account(server)
    b = sdk(server, api_email="ops@example.com", api_key=token).ai_gateway.billing
    assert b.topup.create(account_id=account, amount=1000).payment_intent_id.startswith("in_")
    assert b.credit_balance(account_id=account).balance == 1000
    both = sdk(server, token, api_email="ops@example.com", api_key="cgt_wrong").ai_gateway.billing
    with pytest.raises(cloudflare.PermissionDeniedError):  # the SDK then sends only the (bad) key
        both.credit_balance(account_id=account)


def test_read_token_reads_but_cannot_write(server: support.LiveServer) -> None:
    account, _ = funded_account(server)
    b = billing(server, support.create_token(server, account, "read"))
    for call in _reads(b, account):
        call()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for call in _writes(b, account):
            with pytest.raises(cloudflare.PermissionDeniedError) as err:
                call()
            assert err.value.errors[0].code == 10000
    assert support.balance_units(server, account) == 0
    assert b.invoice_history(account_id=account).invoices == []


def test_gateway_token_may_not_use_the_billing_api(server: support.LiveServer) -> None:
    account = support.create_account(server)
    b = billing(server, support.create_token(server, account, "gateway"))
    for call in _reads(b, account):
        with pytest.raises(cloudflare.PermissionDeniedError):
            call()


def test_another_accounts_token_gets_403_without_learning_anything(server: support.LiveServer) -> None:
    _mine, my_token = funded_account(server)
    theirs, _ = funded_account(server)
    b = billing(server, my_token)
    bodies = []
    for target in (theirs, support.new_account_id()):  # existing and nonexistent look the same
        for call in [*_reads(b, target), *_writes(b, target)]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                with pytest.raises(cloudflare.PermissionDeniedError) as err:
                    call()
            assert target not in str(err.value.body)
            bodies.append(err.value.body)
    assert all(body == bodies[0] for body in bodies)
    assert support.balance_units(server, theirs) == 0


def test_operator_token_may_do_everything(server: support.LiveServer) -> None:
    account, _ = funded_account(server)
    b = billing(server, support.ADMIN_TOKEN)
    assert b.topup.create(account_id=account, amount=1000).payment_intent_id
    for call in _reads(b, account):
        call()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        b.spending_limit.create(account_id=account, amount=1000, duration="daily", strategy="fixed")
    assert b.spending_limit.get(account_id=account).enabled is True
    with pytest.raises(cloudflare.NotFoundError) as err:
        b.credit_balance(account_id=support.new_account_id())
    assert err.value.errors[0].code == 1004


def test_unknown_routes_methods_and_malformed_bodies(server: support.LiveServer) -> None:
    account, token = funded_account(server)
    client = sdk(server, token)
    with pytest.raises(cloudflare.NotFoundError) as err:
        client.get(f"/accounts/{account}/ai-gateway/billing/nope", cast_to=object)
    assert err.value.errors[0].code == 7003
    with pytest.raises(cloudflare.NotFoundError):
        client.get("/zones", cast_to=object)
    with pytest.raises(cloudflare.APIStatusError) as err:
        client.put(f"/accounts/{account}/ai-gateway/billing/credit-balance", cast_to=object, body={})
    assert err.value.status_code == 405
    url = f"/client/v4/accounts/{account}/ai-gateway/billing/topup"
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        for raw in (b"{", b"", b"[1000]", b"null", b'"amount"'):
            r = c.post(url, content=raw, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, raw
            body = r.json()
            assert body["success"] is False and body["result"] is None and body["errors"][0]["code"] == 1002
            assert r.headers["x-should-retry"] == "false"
        r = c.post(url, json={})
        assert r.status_code == 400 and r.json()["errors"][0]["source"] == {"pointer": "/amount"}
    assert support.balance_units(server, account) == 0


def test_every_success_is_a_json_object_envelope(server: support.LiveServer) -> None:
    account, token = funded_account(server)
    b = billing(server, token)
    b.topup.create(account_id=account, amount=1000)
    calls = [
        b.with_raw_response.credit_balance(account_id=account),
        b.with_raw_response.usage_history(account_id=account, value_grouping_window="hour"),
        b.with_raw_response.invoice_history(account_id=account),
        b.with_raw_response.invoice_preview(account_id=account),
        b.topup.with_raw_response.create(account_id=account, amount=2000),
        b.topup.config.with_raw_response.get(account_id=account),
        b.topup.config.with_raw_response.delete(account_id=account),
        b.spending_limit.with_raw_response.get(account_id=account),
        b.spending_limit.with_raw_response.delete(account_id=account),
    ]
    for raw in calls:
        body = raw.http_response.json()
        assert raw.http_response.headers["content-type"] == "application/json"
        assert set(body) == {"errors", "messages", "result", "success"} and isinstance(body["result"], dict)
