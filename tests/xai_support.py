"""Helpers for the xAI Management API tests: teams (accounts with UUID ids) and their keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests import support


@dataclass(frozen=True)
class Team:
    id: str
    read: str  # management key with billing read
    write: str  # management key with billing write

    def path(self, tail: str) -> str:
        return f"/v1/billing/teams/{self.id}/{tail}"


def new_team(server: support.LiveServer, **extra: Any) -> Team:
    team_id = str(uuid.uuid4())
    support.create_account(server, team_id, **extra)
    return Team(
        team_id, support.create_token(server, team_id, "read"), support.create_token(server, team_id, "write")
    )


def client(server: support.LiveServer, key: str | None) -> httpx.Client:
    return server.client(key)


def status_body(r: httpx.Response, status: int, grpc_code: int) -> str:
    """Assert a google.rpc.Status error; returns its message."""
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["code", "message", "details"] and body["details"] == [], r.text
    assert body["code"] == grpc_code, r.text
    return str(body["message"])


def ingest(server: support.LiveServer, team: str, events: list[dict[str, Any]]) -> None:
    """Report usage events through the gateway API; every one must be accepted."""
    token = support.create_token(server, team, "gateway")
    with server.client(token) as c:
        for i in range(0, len(events), 500):
            batch = [{"account_id": team, **e} for e in events[i : i + 500]]
            r = c.post("/v1/gateway/usage", json={"events": batch})
            assert r.status_code == 200 and r.json()["accepted"] == len(batch), r.text
