"""Several `creditgate serve` and `creditgate worker` processes on one database, as separate
operating-system processes (the console script), for the multi-process tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests import support

CLI = Path(sys.executable).with_name("creditgate")


@dataclass
class Cluster:
    """The base URLs of the running servers (clients spread over them) and every process."""

    env: dict[str, str]
    data_dir: Path
    stack: ExitStack
    servers: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client(self, index: int, token: str | None = support.ADMIN_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.servers[index % len(self.servers)], headers=headers, timeout=60)

    def start_server(self) -> str:
        """One more `creditgate serve` (jobs off) on a free port; its base URL once it answers."""
        port = support.free_port()
        log = self.data_dir / f"serve-{len(self.servers)}.log"
        proc = self._spawn(["serve", "--host", "127.0.0.1", "--port", str(port)], log)
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, proc, log)
        self.servers.append(base)
        return base

    def start_workers(self, count: int) -> None:
        """`count` more `creditgate worker --interval 0.2` processes."""
        for _ in range(count):
            self._spawn(["worker", "--interval", "0.2"], self.data_dir / f"worker-{len(self.processes)}.log")

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        # output to a file, never an unread pipe (a full pipe would block the process)
        with log.open("wb") as out:
            proc = subprocess.Popen([str(CLI), *args], env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.stack.callback(_stop, proc)
        self.processes.append(proc)
        return proc


def usage_event(account: str, event_id: str, cost_usd: str = "0.01") -> dict[str, Any]:
    """One usage event of `account` (the gateway's usage shape)."""
    return {
        "id": event_id,
        "account_id": account,
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": cost_usd,
    }


def environment(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The process environment: this database, the test operator token, nothing inherited
    from the caller's CREDITGATE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITGATE_", "PROMETHEUS_"))}
    return {
        **env,
        "CREDITGATE_DATABASE_URL": database_url,
        "CREDITGATE_DATA_DIR": str(data_dir),
        "CREDITGATE_ADMIN_TOKEN": support.ADMIN_TOKEN,
        **extra,
    }


def _wait_until_up(base_url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(base_url + "/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"creditgate serve did not come up: {log.read_text()}"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@contextmanager
def cluster(
    database_url: str, data_dir: Path, *, servers: int = 2, workers: int = 0, **settings: str
) -> Iterator[Cluster]:
    """`servers` x `creditgate serve` (each on its own free port, jobs off) and `workers` x
    `creditgate worker`, all on `database_url`; every process is stopped and waited for on exit."""
    env = environment(database_url, data_dir, CREDITGATE_RUN_JOBS="false", **settings)
    with ExitStack() as stack:
        running = Cluster(env=env, data_dir=data_dir, stack=stack)
        for _ in range(servers):
            running.start_server()
        running.start_workers(workers)
        yield running
        for proc in running.processes:
            assert proc.poll() is None, f"a creditgate process exited early ({proc.args})"
