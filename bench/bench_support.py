"""What the benchmarks share: a free loopback port, server subprocesses, throwaway PostgreSQL
databases, and the CPU time used by a server's processes and by its PostgreSQL backends."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import uuid

PG_ADMIN = os.environ.get("CREDITGATE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_pg_database() -> str:
    """A new, empty database on the bench server; its URL."""
    name = f"creditgate_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    """Drop a database `create_pg_database` made (and nothing else)."""
    name = url.rsplit("/", 1)[1]
    assert name.startswith("creditgate_bench_"), name
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
                pids.append(int(entry))
    return pids


def _backend_pids(url: str | None) -> list[int]:
    """PostgreSQL backends connected to the benchmark database (ours only, not other users')."""
    if url is None or not url.startswith("postgresql"):
        return []

    async def main() -> list[int]:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1", url.rsplit("/", 1)[1]
            )
            return [int(r[0]) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(main())


def cpu_seconds(pgid: int | None, url: str | None) -> tuple[float, float]:
    """CPU seconds used so far by the server's process group and by the PostgreSQL backends
    serving the benchmark database."""
    ours = sum(_proc_cpu(pid) for pid in _group_pids(pgid)) if pgid is not None else 0.0
    return ours, sum(_proc_cpu(pid) for pid in _backend_pids(url))


class Server:
    """A server subprocess in its own process group, stopped (TERM, then KILL) on exit."""

    def __init__(self, cmd: list[str], env: dict[str, str], port: int) -> None:
        # warning: no access log per request (stderr is a pipe read only if the server dies)
        self.cmd, self.env, self.port = cmd, {"CREDITGATE_LOG_LEVEL": "warning", **env}, port
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise SystemExit("server did not start in 60 s")

    def __exit__(self, *_: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
