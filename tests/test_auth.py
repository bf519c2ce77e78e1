"""Tokens: hashed at rest, scoped to one account and one scope, revocable; the admin API
needs the operator token."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from creditgate.accounts.principal import OPERATOR, Principal
from creditgate.errors import PermissionDenied
from tests import support

USAGE = "/v1/gateway/usage"


def _event(account_id: str, event_id: str) -> dict[str, object]:
    return {
        "id": event_id,
        "account_id": account_id,
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 100,
        "output_tokens": 10,
    }


def test_tokens_are_stored_hashed(server: support.LiveServer, database_url: str) -> None:
    account = support.create_account(server)
    with server.admin() as c:
        r = c.post(f"/admin/v1/accounts/{account}/tokens", json={"scope": "gateway", "name": "edge"})
        assert r.status_code == 201
        issued = r.json()
        listed = c.get(f"/admin/v1/accounts/{account}/tokens").json()["tokens"]
    secret = issued["token"]
    assert secret.startswith("cgt_") and len(secret) >= 40
    rows = support.query(database_url, "SELECT * FROM tokens WHERE account_id = :a", a=account)
    assert len(rows) == 1
    stored = [str(v) for v in rows[0]]
    assert hashlib.sha256(secret.encode()).hexdigest() in stored
    assert not any(secret in v for v in stored), "the secret itself must never be stored"
    assert [t["id"] for t in listed] == [issued["id"]]
    assert all(secret not in str(v) for v in listed[0].values())
    assert listed[0]["prefix"] == secret[:10]


def test_two_tokens_differ(server: support.LiveServer) -> None:
    account = support.create_account(server)
    assert support.create_token(server, account, "read") != support.create_token(server, account, "read")


@pytest.mark.parametrize("scope", ["read", "write"])
def test_read_and_write_tokens_cannot_report_usage(
    server: support.LiveServer, database_url: str, scope: str
) -> None:
    account = support.create_account(server)
    token = support.create_token(server, account, scope)
    before = support.snapshot(database_url)
    with server.client(token) as c:
        r = c.post(USAGE, json={"events": [_event(account, "x")]})
    assert r.status_code == 403 and "scope" in r.json()["error"]["message"]
    assert support.snapshot(database_url) == before


def test_scopes_and_principal_rules() -> None:
    read = Principal("a", "read", "t1")
    write = Principal("a", "write", "t2")
    gateway = Principal("a", "gateway", "t3")
    assert read.may("read", "a") and not read.may("write", "a") and not read.may("gateway", "a")
    assert write.may("read", "a") and write.may("write", "a") and not write.may("gateway", "a")
    assert gateway.may("gateway", "a") and not gateway.may("read", "a")
    for p in (read, write, gateway):
        assert not p.is_operator
        for action in ("read", "write", "gateway"):
            assert not p.may(action, "b")
            with pytest.raises(PermissionDenied) as info:
                p.require(action, "b")
            assert "b" not in info.value.message
        with pytest.raises(PermissionDenied):
            p.require_operator()
    assert OPERATOR.may("write", "anything") and OPERATOR.is_operator


def test_token_never_reaches_another_account(server: support.LiveServer, database_url: str) -> None:
    mine, theirs = support.create_account(server), support.create_account(server)
    support.grant(server, theirs, 100)
    token = support.create_token(server, mine, "gateway")
    ghost = support.new_account_id()
    before = support.snapshot(database_url)
    answers = []
    with server.client(token) as c:
        for other in (theirs, ghost):  # an existing and a missing account look the same
            r = c.post(USAGE, json={"events": [_event(other, "y")]})
            assert r.status_code == 403
            assert other not in r.text
            answers.append(r.json())
            r = c.post(USAGE, json={"events": [_event(mine, "x"), _event(other, "y")]})
            assert r.status_code == 403
        for path in (
            f"/admin/v1/accounts/{theirs}",
            f"/admin/v1/accounts/{theirs}/ledger",
            f"/admin/v1/accounts/{theirs}/tokens",
        ):
            r = c.get(path)
            assert r.status_code == 403 and theirs not in r.text
        r = c.post(f"/admin/v1/accounts/{theirs}/grants", json={"amount_cents": 1})
        assert r.status_code == 403
    assert answers[0] == answers[1]
    assert support.snapshot(database_url) == before


def test_x_auth_email_and_key(server: support.LiveServer) -> None:
    account = support.create_account(server)
    token = support.create_token(server, account, "gateway")
    body = {"events": [_event(account, "via-x-auth")]}
    with httpx.Client(base_url=server.base_url) as c:
        r = c.post(USAGE, json=body, headers={"X-Auth-Email": "ops@example.com", "X-Auth-Key": token})
        assert r.status_code == 200 and r.json()["accepted"] == 1
        r = c.post(USAGE, json=body, headers={"X-Auth-Key": token})  # the pair is needed
        assert r.status_code == 401
        r = c.post(USAGE, json=body, headers={"X-Auth-Email": "ops@example.com", "X-Auth-Key": token + "x"})
        assert r.status_code == 401
        r = c.post(USAGE, json=body, headers={"Authorization": f"bearer {token}"})  # case-insensitive scheme
        assert r.status_code == 200 and r.json()["duplicates"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer cgt_forged"},
        {"Authorization": f"Bearer {support.ADMIN_TOKEN}x"},
    ],
)
def test_missing_or_wrong_credentials_are_401(server: support.LiveServer, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        for method, path in (("POST", USAGE), ("GET", "/admin/v1/accounts"), ("POST", "/admin/v1/accounts")):
            r = c.request(method, path, headers=headers, json={})
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["error"]["type"] in ("unauthenticated", "missing_credentials")


def test_revoked_token_is_rejected(server: support.LiveServer) -> None:
    account = support.create_account(server)
    with server.admin() as admin:
        issued = admin.post(f"/admin/v1/accounts/{account}/tokens", json={"scope": "gateway"}).json()
        keep = admin.post(f"/admin/v1/accounts/{account}/tokens", json={"scope": "gateway"}).json()
    with server.client(issued["token"]) as c:
        assert c.post(USAGE, json={"events": [_event(account, "before")]}).status_code == 200
    with server.admin() as admin:
        r = admin.delete(f"/admin/v1/accounts/{account}/tokens/{issued['id']}")
        assert r.status_code == 200
        assert admin.delete(f"/admin/v1/accounts/{account}/tokens/{issued['id']}").status_code == 404
        tokens = {t["id"]: t for t in admin.get(f"/admin/v1/accounts/{account}/tokens").json()["tokens"]}
        assert tokens[issued["id"]]["revoked_at"] and tokens[keep["id"]]["revoked_at"] is None
    with server.client(issued["token"]) as c:
        assert c.post(USAGE, json={"events": [_event(account, "after")]}).status_code == 401
    with server.client(keep["token"]) as c:
        assert c.post(USAGE, json={"events": [_event(account, "after")]}).status_code == 200


def test_revoking_needs_the_right_account(server: support.LiveServer) -> None:
    a, b = support.create_account(server), support.create_account(server)
    with server.admin() as admin:
        issued = admin.post(f"/admin/v1/accounts/{a}/tokens", json={"scope": "read"}).json()
        assert admin.delete(f"/admin/v1/accounts/{b}/tokens/{issued['id']}").status_code == 404


@pytest.mark.parametrize("scope", ["read", "write", "gateway"])
def test_admin_api_needs_the_operator_token(
    server: support.LiveServer, database_url: str, scope: str
) -> None:
    account = support.create_account(server)
    token = support.create_token(server, account, scope)
    before = support.snapshot(database_url)
    with server.client(token) as c:
        calls = [
            ("GET", "/admin/v1/accounts", None),
            ("GET", f"/admin/v1/accounts/{account}", None),
            ("POST", "/admin/v1/accounts", {"id": support.new_account_id()}),
            ("POST", f"/admin/v1/accounts/{account}/tokens", {"scope": "write"}),
            ("POST", f"/admin/v1/accounts/{account}/grants", {"amount_cents": 100}),
            ("POST", f"/admin/v1/accounts/{account}/adjustments", {"amount_cents": 100, "reason": "x"}),
            ("GET", "/admin/v1/prices", None),
            ("POST", "/admin/v1/prices", {"prices": []}),
            ("GET", "/admin/v1/reconcile", None),
        ]
        for method, path, body in calls:
            r = c.request(method, path, json=body)
            assert r.status_code == 403, (method, path, r.text)
    assert support.snapshot(database_url) == before
