"""Running it in production: bad settings give one line and exit 2, secrets never show, the
operator token `serve` generates, the access log, /metrics after traffic, /readyz, and
SIGTERM draining a request in flight."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from creditgate import jobs
from creditgate.cli import admin_token
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.observability import logs
from tests import support
from tests import test_webhooks_out as out

CLI = Path(sys.executable).with_name("creditgate")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITGATE_", "PROMETHEUS_"))}
    return {**env, "CREDITGATE_DATA_DIR": str(tmp_path), **extra}


def _creditgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=120)


# -- settings ---------------------------------------------------------------------------------


def test_serve_with_a_bad_port_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    proc = _creditgate("serve", env=_env(tmp_path, CREDITGATE_PORT="abc"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "CREDITGATE_PORT" in proc.stderr and "'abc'" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("command", [("serve",), ("worker", "--once"), ("accounts", "list"), ("migrate",)])
def test_bad_settings_and_unreachable_databases_are_one_line_and_exit_2(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    dead = support.free_port()  # nothing listens there
    cases = {
        "CREDITGATE_HOLD_TTL_SECONDS": {"CREDITGATE_HOLD_TTL_SECONDS": "ten"},
        "CREDITGATE_RUN_JOBS": {"CREDITGATE_RUN_JOBS": "maybe"},
        "CREDITGATE_DATABASE_URL": {"CREDITGATE_DATABASE_URL": "mysql://root:hunter2@db/x"},
        "CREDITGATE_DATABASE_URL ": {
            "CREDITGATE_DATABASE_URL": f"postgresql://postgres:hunter2@127.0.0.1:{dead}/creditgate"
        },
    }
    for name, extra in cases.items():
        proc = _creditgate(*command, env=_env(tmp_path, CREDITGATE_ADMIN_TOKEN="cgo_topsecret", **extra))
        assert proc.returncode == 2, (name, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error: {name.strip()}"), proc.stderr
        assert "hunter2" not in proc.stderr and "topsecret" not in proc.stderr


def test_serve_on_a_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _creditgate("serve", env=_env(tmp_path, CREDITGATE_PORT=str(port)))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: CREDITGATE_PORT") and str(port) in proc.stderr


def test_secrets_and_the_database_password_never_show_in_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "CREDITGATE_DATABASE_URL", "postgresql://billing:pw-s3cret@db.internal:5432/creditgate"
    )
    monkeypatch.setenv("CREDITGATE_ADMIN_TOKEN", "cgo_admin-s3cret")
    monkeypatch.setenv("CREDITGATE_PAYMENTS", "stripe")
    monkeypatch.setenv("CREDITGATE_STRIPE_API_KEY", "sk_test_s3cret")
    monkeypatch.setenv("CREDITGATE_STRIPE_WEBHOOK_SECRET", "whsec_s3cret")
    monkeypatch.setenv("CREDITGATE_DATA_DIR", str(tmp_path))
    settings = Settings.from_env()
    for shown in (repr(settings), str(settings), repr(settings.replace(port=9000))):
        assert "s3cret" not in shown
        assert "postgresql+asyncpg://billing:***@db.internal:5432/creditgate" in shown
    assert settings.secret("admin_token") == "cgo_admin-s3cret"
    assert settings.database_url == "postgresql+asyncpg://billing:pw-s3cret@db.internal:5432/creditgate"
    monkeypatch.setenv("CREDITGATE_PORT", "70000")
    with pytest.raises(ValueError, match="CREDITGATE_PORT") as bad:
        Settings.from_env()
    assert "s3cret" not in str(bad.value)


def test_every_variable_keeps_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CREDITGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    s = Settings.from_env()
    assert s.data_dir == tmp_path / "creditgate"
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'creditgate' / 'creditgate.db'}"
    assert (s.host, s.port, s.admin_token, s.payments) == ("127.0.0.1", 8787, None, "sandbox")
    assert (s.hold_ttl_seconds, s.db_pool_size, s.auto_migrate, s.run_jobs) == (600, 20, True, True)
    assert (s.public_url, s.topup_config_api_writes, s.stripe_max_network_retries) == (None, True, 2)
    assert (s.log_format, s.log_level) == ("console", "info")
    monkeypatch.setenv("CREDITGATE_RUN_JOBS", "off")
    monkeypatch.setenv("CREDITGATE_AUTO_MIGRATE", "")  # empty means the default, as before
    assert (Settings.from_env().run_jobs, Settings.from_env().auto_migrate) == (False, True)


# -- the operator token -------------------------------------------------------------------------


def test_operator_token_is_generated_once_kept_0600_and_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = admin_token.ensure(tmp_path / "data", "http://127.0.0.1:8787")
    first = capsys.readouterr().err
    path = tmp_path / "data" / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text().strip() == token
    assert token in first and "Authorization: Bearer" in first and str(path) in first
    assert admin_token.ensure(tmp_path / "data", "http://127.0.0.1:8787") == token
    again = capsys.readouterr().err
    assert token not in again and str(path) in again


# -- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def json_logs() -> Iterator[None]:
    logs.configure("json", "info")
    try:
        yield
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if getattr(handler, "_creditgate", False):
                root.removeHandler(handler)
        root.setLevel(logging.WARNING)


def _records(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_logs_carry_requests_failures_and_never_a_token(
    fresh_database_url: str, tmp_path: Path, json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = support.make_settings(fresh_database_url, tmp_path)
    with support.live_server(settings) as server:
        account = support.create_account(server)
        gateway = support.create_token(server, account, "gateway")
        write = support.create_token(server, account, "write")
        with httpx.Client(base_url=server.base_url, timeout=30) as c:
            r = c.get(
                f"/v1/gateway/holds/hold_x?key={gateway}", headers={"Authorization": f"Bearer {gateway}"}
            )
            request_id = r.headers["x-request-id"]
            c.get(
                f"/client/v4/accounts/{account}/ai-gateway/billing/credit-balance",
                headers={"X-Auth-Email": "ops@example.com", "X-Auth-Key": write},
            )
            c.get(
                "/admin/v1/accounts?key=cgt_wrong-secret",
                headers={"Authorization": "Bearer cgt_wrong-secret"},
            )
            mine = c.get("/healthz", headers={"X-Request-ID": "lb-1234"})
            assert mine.headers["x-request-id"] == "lb-1234"

    async def failing_delivery(db: Database) -> None:
        account_id = await out._account(db)
        await out._endpoint(db, f"http://127.0.0.1:{support.free_port()}/hook")
        await out._emit(db, account_id, now=datetime.now(UTC))
        await jobs.run_once(support.job_context(db), ["deliver_webhooks"])

    out.run(fresh_database_url, failing_delivery)

    async def boom(ctx: Any) -> int:
        raise RuntimeError("the job broke")

    wired = jobs.JOBS
    jobs.JOBS = (*wired, jobs.Job("test_boom", boom))
    try:
        out.run(fresh_database_url, lambda db: jobs.run_once(support.job_context(db), ["test_boom"]))
    finally:
        jobs.JOBS = wired

    err = capsys.readouterr().err
    for secret in (gateway, write, support.ADMIN_TOKEN, "cgt_wrong-secret"):
        assert secret not in err
    records = _records(err)
    access = [r for r in records if r.get("logger") == "creditgate.access"]
    hold = next(r for r in access if r["request_id"] == request_id)
    assert hold["route"] == "/v1/gateway/holds/{hold_id}" and hold["method"] == "GET"
    assert hold["status"] == 404 and hold["account_id"] == account and hold["duration_ms"] >= 0
    assert any(
        r["route"] == "/client/v4/accounts/{account_id}/ai-gateway/billing/credit-balance" for r in access
    )
    assert any(r["request_id"] == "lb-1234" for r in access)
    assert any(r["status"] == 401 and r["route"] == "/admin/v1/accounts" for r in access)
    failed = [r for r in records if r["event"] == "webhook delivery failed"]
    assert failed and failed[0]["level"] == "warning" and failed[0]["next"] == "retrying"
    job = [r for r in records if "test_boom failed" in r["event"]]
    assert job and job[0]["level"] == "error" and "the job broke" in job[0]["exception"]


# -- metrics ------------------------------------------------------------------------------------


def _scrape(server: support.LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return _samples(r.text)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_after_traffic_carry_the_documented_series(server: support.LiveServer) -> None:
    before = _scrape(server)
    account = support.create_account(server)
    support.grant(server, account, 100)
    token = support.create_token(server, account, "gateway")
    with server.client(token) as c:
        events = [
            {"id": "m-1", "account_id": account, "model": "gpt-4o", "input_tokens": 10, "output_tokens": 5},
            {"id": "m-1", "account_id": account, "model": "gpt-4o", "input_tokens": 10, "output_tokens": 5},
            {
                "id": "m-2",
                "account_id": account,
                "model": "no-such-model",
                "input_tokens": 1,
                "output_tokens": 1,
            },
        ]
        assert c.post("/v1/gateway/usage", json={"events": events}).status_code == 200
        allowed = c.post(
            "/v1/gateway/authorize",
            json={
                "account_id": account,
                "request_id": "m-3",
                "model": "gpt-4o",
                "estimated_cost_usd": "0.01",
            },
        )
        assert allowed.json()["allowed"] is True
        denied = c.post(
            "/v1/gateway/authorize",
            json={"account_id": account, "request_id": "m-4", "model": "gpt-4o", "estimated_cost_usd": "500"},
        )
        assert denied.json() == {"allowed": False, "reason": "insufficient_credit"}
    out.run(server.settings.database_url, lambda db: jobs.run_once(support.job_context(db), ["expire_holds"]))
    after = _scrape(server)

    def delta(name: str, **labels: str) -> float:
        return _get(after, name, **labels) - _get(before, name, **labels)

    assert delta("creditgate_usage_events_total", outcome="accepted") == 1
    assert delta("creditgate_usage_events_total", outcome="duplicate") == 1
    assert delta("creditgate_usage_events_total", outcome="rejected") == 1
    assert delta("creditgate_authorize_decisions_total", decision="allowed", reason="") == 1
    assert delta("creditgate_authorize_decisions_total", decision="denied", reason="insufficient_credit") == 1
    route = {"method": "POST", "route": "/v1/gateway/usage"}
    assert delta("creditgate_http_requests_total", **route, status="200") == 1
    assert delta("creditgate_http_request_duration_seconds_count", **route) == 1
    assert delta("creditgate_http_request_duration_seconds_sum", **route) > 0
    assert delta("creditgate_http_request_duration_seconds_bucket", **route, le="+Inf") == 1
    assert (
        delta("creditgate_http_requests_total", method="POST", route="/v1/gateway/authorize", status="200")
        == 2
    )
    assert (
        delta("creditgate_http_requests_total", method="POST", route="/admin/v1/accounts", status="201") == 1
    )
    assert _get(after, "creditgate_open_holds") >= 1
    assert delta("creditgate_job_runs_total", job="expire_holds", outcome="ok") == 1
    assert delta("creditgate_job_duration_seconds_count", job="expire_holds") == 1
    stamp = _get(after, "creditgate_job_last_success_timestamp_seconds", job="expire_holds")
    assert time.time() - 600 < stamp <= time.time()
    assert 0 <= _get(after, "creditgate_job_lag_seconds", job="expire_holds") < 600
    for outcome in ("succeeded", "retrying", "failed", "stale"):
        assert ("creditgate_webhook_deliveries_total", (("outcome", outcome),)) in after
    for outcome in ("succeeded", "failed", "requires_action", "unanswered"):
        assert ("creditgate_auto_topup_attempts_total", (("outcome", outcome),)) in after


# -- health -------------------------------------------------------------------------------------


def test_readyz_answers_503_when_the_schema_is_behind_and_200_at_head(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """A database an older release migrated (its alembic_version behind the code's head)."""
    settings = support.make_settings(fresh_database_url, tmp_path)
    url = fresh_database_url
    with support.live_server(settings) as server, httpx.Client(base_url=server.base_url, timeout=30) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ok = c.get("/readyz")
        assert ok.status_code == 200 and ok.json()["database"] == "ok"
        at_head = support.query(url, "SELECT version_num FROM alembic_version")
        support.query(url, "DELETE FROM alembic_version")
        support.query(url, "INSERT INTO alembic_version (version_num) VALUES ('0001_core')")
        behind = c.get("/readyz")
        assert behind.status_code == 503 and behind.json()["schema"] == ["0001_core"]
        assert behind.json()["schema_head"] == ok.json()["schema"]
        assert c.get("/healthz").status_code == 200
        support.query(url, "DELETE FROM alembic_version")
        for (version,) in at_head:
            support.query(url, "INSERT INTO alembic_version (version_num) VALUES (:v)", v=version)
        assert c.get("/readyz").status_code == 200


@pytest.mark.postgres
def test_readyz_answers_503_while_the_database_is_gone_and_200_after(tmp_path: Path) -> None:
    support.pg_or_skip()
    url = support.create_pg_database()
    name = url.rsplit("/", 1)[1]
    try:
        settings = support.make_settings(url, tmp_path)
        support.prepare(settings)
        with support.live_server(settings) as server, httpx.Client(base_url=server.base_url, timeout=30) as c:
            assert c.get("/readyz").status_code == 200
            support.drop_pg_database(url)
            gone = c.get("/readyz")
            assert gone.status_code == 503 and gone.json()["database"] == "unreachable"
            assert c.get("/healthz").status_code == 200
            asyncio.run(support._pg_exec(f'CREATE DATABASE "{name}"'))
            support.prepare(settings)
            assert c.get("/readyz").status_code == 200
    finally:
        support.drop_pg_database(url)


# -- SIGTERM ------------------------------------------------------------------------------------


def _wait_until_up(base_url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(base_url + "/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "creditgate serve did not come up"
        time.sleep(0.1)


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before {marker!r}: {data!r}"
        data += chunk
    return data


def test_sigterm_drains_a_request_in_flight(tmp_path: Path) -> None:
    """`serve` without CREDITGATE_ADMIN_TOKEN prints its new token once; a usage report whose
    body is still arriving when SIGTERM comes is answered in full and stored, then the server
    exits."""
    port = support.free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(tmp_path, CREDITGATE_PORT=str(port), CREDITGATE_DATABASE_URL=f"sqlite:///{tmp_path / 'cg.db'}")
    proc = subprocess.Popen(
        [str(CLI), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_until_up(base, proc)
        token = (tmp_path / "admin-token").read_text().strip()
        admin = {"Authorization": f"Bearer {token}"}
        account = support.new_account_id()
        assert httpx.post(base + "/admin/v1/accounts", json={"id": account}, headers=admin).status_code == 201
        made = httpx.post(
            base + f"/admin/v1/accounts/{account}/tokens", json={"scope": "gateway"}, headers=admin
        )
        gateway = made.json()["token"]
        body = json.dumps(
            {
                "events": [
                    {
                        "id": "e-1",
                        "account_id": account,
                        "model": "x",
                        "input_tokens": 1,
                        "output_tokens": 1,
                        "cost_usd": "0.01",
                    }
                ]
            }
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(
                b"POST /v1/gateway/usage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {gateway}\r\nContent-Length: {len(body)}\r\n".encode()
                + b"Expect: 100-continue\r\n\r\n"
            )
            _read_until(sock, b"100 Continue\r\n\r\n")  # the handler is now waiting for the body
            proc.terminate()
            deadline = time.monotonic() + 30
            while True:  # until the server has stopped taking new connections
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                except OSError:
                    break
                assert time.monotonic() < deadline, "the server kept accepting connections after SIGTERM"
                time.sleep(0.05)
            sock.sendall(body)
            answer = _read_until(sock, b"}")
        assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {"accepted": 1, "duplicates": 0, "rejected": []}
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # uvicorn finishes its graceful shutdown, then re-raises the signal it caught
    assert proc.returncode in (0, -signal.SIGTERM), stderr
    assert "Shutting down" in stderr and "Finished server process" in stderr
    assert stderr.count(token) == 1 and "Authorization: Bearer" in stderr
    stored = support.query(
        env["CREDITGATE_DATABASE_URL"], "SELECT count(*) FROM usage_events WHERE account_id = :a", a=account
    )
    assert stored == [(1,)]


def test_metrics_add_up_across_worker_processes(tmp_path: Path) -> None:
    """`serve --workers 2`: whichever worker answers a scrape reports every worker's requests."""
    port = support.free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(
        tmp_path, CREDITGATE_PORT=str(port), CREDITGATE_ADMIN_TOKEN="cgo_test", CREDITGATE_RUN_JOBS="false"
    )
    proc = subprocess.Popen(
        [str(CLI), "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_up(base, proc)
        close = {"Connection": "close"}  # a new connection each time: either worker may take it

        def healthz_count() -> float:
            text = httpx.get(base + "/metrics", timeout=30, headers=close).text
            return _get(
                _samples(text), "creditgate_http_requests_total", method="GET", route="/healthz", status="200"
            )

        before = healthz_count()
        for _ in range(20):
            assert httpx.get(base + "/healthz", timeout=30, headers=close).status_code == 200
        assert {healthz_count() for _ in range(6)} == {before + 20}
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def test_worker_serves_its_job_metrics(tmp_path: Path) -> None:
    """`creditgate worker --metrics-port`: the job series of a separate worker (compose's)."""
    port = support.free_port()
    env = _env(tmp_path, CREDITGATE_DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}")
    cmd = [str(CLI), "worker", "--interval", "0.2", "--metrics-port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # until a pass has been recorded
            assert proc.poll() is None, proc.communicate()[1]
            try:
                samples = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
            except httpx.TransportError:
                samples = {}
            if _get(samples, "creditgate_job_runs_total", job="expire_holds", outcome="ok") >= 1:
                break
            assert time.monotonic() < deadline, "the worker's metrics never showed a job run"
            time.sleep(0.2)
        assert _get(samples, "creditgate_job_duration_seconds_count", job="expire_holds") >= 1
        assert 0 <= _get(samples, "creditgate_job_lag_seconds", job="expire_holds") < 600
        assert _get(samples, "creditgate_job_runs_total", job="expire_holds", outcome="failed") == 0
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 0
