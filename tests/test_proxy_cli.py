"""`creditgate upstreams add|list|remove`, and the upstream key encrypted with the data
directory's generated key, shared by the CLI and the server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest

from tests import proxy_support as ps
from tests import support


def test_upstreams_from_the_cli(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("TEST_UPSTREAM_KEY", ps.UPSTREAM_KEY)
    monkeypatch.delenv("CREDITGATE_UPSTREAM_ENCRYPTION_KEY", raising=False)
    with ps.fake_upstream() as (fake, url):
        added = support.cli(
            fresh_database_url,
            "upstreams",
            "add",
            "openai",
            "--base-url",
            url + "/v1",
            "--model",
            "gpt-4o",
            "--model",
            "gpt-4o-mini=cheap",
            "--markup-percent",
            "12.5",
            "--api-key-env",
            "TEST_UPSTREAM_KEY",
            data_dir=data,
        )
        assert ps.UPSTREAM_KEY not in added.stdout + added.stderr
        upstream = json.loads(added.stdout)
        assert upstream["markup_percent"] == "12.5"
        assert [(m["name"], m["model"]) for m in upstream["models"]] == [
            ("cheap", "gpt-4o-mini"),
            ("gpt-4o", "gpt-4o"),
        ]
        assert (data / "upstream-key").stat().st_mode & 0o777 == 0o600
        listed = support.cli(fresh_database_url, "upstreams", "list", data_dir=data).stdout
        assert ps.UPSTREAM_KEY not in listed and json.loads(listed)["upstreams"][0]["id"] == upstream["id"]

        settings = support.make_settings(fresh_database_url, data)
        with ps.proxy_server(settings) as live:
            account = support.create_account(live)
            support.grant(live, account, 100)
            key = support.create_token(live, account, "api")
            client = openai.OpenAI(base_url=live.base_url + "/openai/v1", api_key=key, max_retries=0)
            client.chat.completions.create(model="cheap", messages=[{"role": "user", "content": "hi"}])
            assert fake.requests[0][2]["model"] == "gpt-4o-mini"

            support.cli(fresh_database_url, "upstreams", "remove", upstream["id"], data_dir=data)
            deadline = time.monotonic() + 30  # the server's route cache lives 5 s
            while True:
                try:
                    client.chat.completions.create(
                        model="cheap", messages=[{"role": "user", "content": "hi"}]
                    )
                except openai.NotFoundError:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.2)
        gone = support.cli(
            fresh_database_url, "upstreams", "remove", upstream["id"], data_dir=data, check=False
        )
        assert gone.returncode != 0


def test_a_changed_encryption_key_fails_loudly(fresh_database_url: str, tmp_path: Path) -> None:
    with ps.fake_upstream() as (_, url):
        first = support.make_settings(fresh_database_url, tmp_path, upstream_encryption_key="one")
        with ps.proxy_server(first) as live:
            ps.add_upstream(
                live, provider="openai", base_url=url + "/v1", api_key=ps.UPSTREAM_KEY, models=["gpt-4o"]
            )
        second = support.make_settings(fresh_database_url, tmp_path, upstream_encryption_key="two")
        with ps.proxy_server(second) as live:
            account = support.create_account(live)
            key = support.create_token(live, account, "api")
            client = openai.OpenAI(base_url=live.base_url + "/openai/v1", api_key=key, max_retries=0)
            assert [m.id for m in client.models.list()] == ["gpt-4o"]
            with pytest.raises(openai.APIStatusError) as caught:
                client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            assert caught.value.status_code == 503
            assert "CREDITGATE_UPSTREAM_ENCRYPTION_KEY" in caught.value.message
