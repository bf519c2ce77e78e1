"""`creditgate worker`: one pass, and a long-running worker that delivers an outgoing webhook
and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from typer.testing import CliRunner

from creditgate.cli.main import app
from tests import test_webhooks_out as out
from tests.stripe_support import Sink, sink  # noqa: F401 - fixture

CLI = Path(sys.executable).with_name("creditgate")


def _env(url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CREDITGATE_DATABASE_URL": url, "CREDITGATE_DATA_DIR": str(tmp_path)}


def test_once_prints_what_each_job_did(tmp_path: Path) -> None:
    env = _env(f"sqlite:///{tmp_path / 'w.db'}", tmp_path)
    result = CliRunner().invoke(app, ["worker", "--once"], env=env)
    assert result.exit_code == 0, result.output
    counts = orjson.loads(result.stdout)
    assert counts["deliver_webhooks"] == 0 and counts["webhook_inbox"] == 0
    bad = CliRunner().invoke(app, ["worker", "--once", "--job", "nope"], env=env)
    assert bad.exit_code == 2 and "unknown job" in bad.output


def test_worker_delivers_and_stops_on_sigterm(fresh_database_url: str, tmp_path: Path, sink: Sink) -> None:  # noqa: F811
    async def setup(db: out.Database) -> str:
        account = await out._account(db)
        await out._endpoint(db, sink.url)
        return await out._emit(db, account, now=out.datetime.now(out.UTC))

    event_id = out.run(fresh_database_url, setup)
    proc = subprocess.Popen(
        [str(CLI), "worker", "--interval", "0.2"],
        env=_env(fresh_database_url, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, headers = sink.wait_for(lambda b, h: h.get("webhook-id") == event_id, timeout=30)
        deadline = time.monotonic() + 30  # then wait until the worker has recorded it
        while out.run(fresh_database_url, lambda db: out._deliveries(db, event_id))[0].status != "succeeded":
            assert time.monotonic() < deadline, "the worker never recorded the delivery"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "worker started" in stderr and "worker stopped" in stderr
    assert "job deliver_webhooks handled 1 item(s)" in stderr
    assert headers["webhook-signature"].startswith("v1,")
