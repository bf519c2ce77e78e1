"""Ingest benchmark: `creditgate serve` on PostgreSQL and on SQLite, fed batches of usage
events by several concurrent keep-alive clients, next to a bare FastAPI endpoint that only
parses the same batch (bench/bare_app.py) under the same uvicorn settings.

    .venv/bin/python bench/ingest.py                      # both backends, defaults below
    .venv/bin/python bench/ingest.py --backend postgresql --runs 5 --duration 10

Everything runs on 127.0.0.1: the script creates (and drops) its own PostgreSQL database
(CREDITGATE_BENCH_PG, default postgresql://postgres@127.0.0.1:5432/postgres) or a SQLite
file in a temp dir, creates the accounts, starts each server as a subprocess, measures for
a fixed time after a warm-up, stops it, and finally checks the books (every unique event
stored once, reconcile ok). It prints events/s, p50/p99 batch latency, our ratio to the
bare endpoint, the server's peak RSS and the usage applier's lag (how long the oldest stored but
unapplied usage had waited, sampled every 100 ms: p99 of the samples), at full load and in a
paced run at --paced-fraction of the full-load rate (open loop: latency from each request's
scheduled time). `--save-baseline` stores the medians in bench/baseline.json; later runs print
their ratio to it. The load generator is a minimal asyncio HTTP/1.1 client (pre-built request
bytes, fresh event ids per request by substitution) so it takes as little CPU as possible
from the server it shares the machine with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench_support import Server, cpu_seconds, create_pg_database, drop_pg_database, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ADMIN_TOKEN = "bench-operator-token"
MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4"),
    ("google", "gemini-2.0-flash"),
    ("xai", "grok-3-mini"),
]
CUR, PRV, ACCT, PREV_ACCT = b"<CUR:0000000000>", b"<PRV:0000000000>", b"@ACCOUNT@", b"@PREVIOUS@"


def log(message: str) -> None:
    print(message, flush=True)


# ---- databases ----------------------------------------------------------------------------


def create_database(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}"
    return create_pg_database()


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        drop_pg_database(url)


def prepare(url: str, n_accounts: int) -> list[str]:
    """Migrate, seed the catalog and open the accounts, in-process, before any server runs."""
    from creditgate.api.app import prepare_database
    from creditgate.clock import system_clock
    from creditgate.config import normalize_database_url
    from creditgate.db import Database
    from creditgate.ledger import service as ledger

    ids = [uuid.UUID(int=random.getrandbits(128)).hex for _ in range(n_accounts)]

    async def main() -> None:
        db = Database(normalize_database_url(url), pool_size=2)
        try:
            await prepare_database(db)
            async with db.write() as conn:
                for account in ids:
                    await ledger.open_account(conn, account, name="bench", mode="prepaid", now=system_clock())
        finally:
            await db.dispose()

    asyncio.run(main())
    return ids


def verify(url: str, expected_events: int) -> str:
    """Every unique event stored once, and the books balance."""
    from sqlalchemy import text

    from creditgate.billing.reconcile import reconcile_report
    from creditgate.config import normalize_database_url
    from creditgate.db import Database

    async def main() -> str:
        db = Database(normalize_database_url(url), pool_size=1)
        try:
            async with db.read() as conn:
                stored = (await conn.execute(text("SELECT count(*) FROM usage_events"))).scalar_one()
                report = await reconcile_report(conn)
        finally:
            await db.dispose()
        if stored != expected_events or not report["ok"]:
            raise SystemExit(f"VERIFY FAILED: {stored} events stored, {expected_events} expected; {report}")
        checked = report["accounts_checked"]
        return f"verified: {stored:,} unique events stored once, reconcile ok over {checked} accounts"

    return asyncio.run(main())


# ---- servers ------------------------------------------------------------------------------


def ours(url: str, port: int, workers: int, data_dir: Path) -> Server:
    env = {
        **os.environ,
        "CREDITGATE_DATABASE_URL": url,
        "CREDITGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "CREDITGATE_RUN_JOBS": "false",
        "CREDITGATE_DATA_DIR": str(data_dir),
    }
    cmd = [
        str(BIN / "creditgate"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Server(cmd, env, port)


def bare(port: int, workers: int) -> Server:
    cmd = [
        str(BIN / "uvicorn"),
        "bare_app:app",
        "--app-dir",
        str(ROOT / "bench"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Server(cmd, dict(os.environ), port)


# ---- load ---------------------------------------------------------------------------------


TEMPLATES = 64


def templates(accounts: list[str], batch: int, spread: bool) -> list[tuple[bytes, bytes]]:
    """(body, account of event 0) per template; request n uses template n % len. With
    `spread` each template sends its events to its own random accounts, so consecutive
    batches touch different account sets."""
    count = TEMPLATES if spread else 1
    made = [template(accounts, batch, spread, seed) for seed in range(count)]
    return [(body, first.encode()) for body, first in made]


def template(accounts: list[str], batch: int, spread: bool, seed: int) -> tuple[bytes, str]:
    """A batch with placeholders: CUR (this request's number) in every id, and PRV in the
    last event's id, which repeats event 0 of the previous request (a ~1% retried event,
    sometimes sent concurrently with the original; PREV_ACCT is that event's account). With
    `spread`, events go to random accounts; otherwise the whole batch is one account's
    (ACCT, substituted per request)."""
    rnd = random.Random(seed)
    events = []
    first_account = rnd.choice(accounts) if spread else ACCT.decode()
    for i in range(batch):
        provider, model = rnd.choice(MODELS)
        retried = i == batch - 1 and batch > 1
        number = (PRV if retried else CUR).decode()
        index = 0 if retried else i
        if retried:
            account = PREV_ACCT.decode()
        else:
            account = first_account if i == 0 or not spread else rnd.choice(accounts)
        inp = rnd.randint(10, 8000)
        events.append(
            {
                "id": f"ev-{number}-{index}",
                "account_id": account,
                "provider": provider,
                "model": model,
                "input_tokens": inp,
                "output_tokens": rnd.randint(1, 2000),
                "cached_tokens": inp // 4,
                "metadata": {"gateway_id": "bench", "key_id": f"k{i % 7}"},
            }
        )
    return orjson.dumps({"events": events}), first_account


@dataclass
class Load:
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    counter: int = 0
    lags: list[float] = field(default_factory=list)  # seconds the oldest pending usage waited
    drain_s: float = 0.0  # after the load: until nothing was left to apply


class Pacer:
    """Open-loop schedule: request k is due at start + k / rate, whoever sends it."""

    def __init__(self, rate: float, start: float) -> None:
        self.interval, self.start, self.k = 1.0 / rate, start, 0

    async def next_due(self) -> float:
        due = self.start + self.k * self.interval
        self.k += 1
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        return due


async def _client(
    port: int,
    head: bytes,
    tmpls: list[tuple[bytes, bytes]],
    accounts: list[str],
    spread: bool,
    load: Load,
    measure_from: float,
    stop_at: float,
    pacer: Pacer | None,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            started = time.perf_counter() if pacer is None else await pacer.next_due()
            if started >= stop_at:
                return
            load.counter += 1
            n = load.counter
            prev = max(n - 1, 1)
            tmpl, _ = tmpls[n % len(tmpls)]
            body = tmpl.replace(CUR, b"<CUR:%010d>" % n).replace(PRV, b"<CUR:%010d>" % prev)
            if spread:
                body = body.replace(PREV_ACCT, tmpls[prev % len(tmpls)][1])
            else:
                previous = accounts[prev % len(accounts)].encode()
                body = body.replace(ACCT, accounts[n % len(accounts)].encode()).replace(PREV_ACCT, previous)
            writer.write(head + b"%d\r\n\r\n" % len(body) + body)
            status = await reader.readuntil(b"\r\n\r\n")
            length = int(status.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            done = time.perf_counter()
            if done >= measure_from and done < stop_at:
                load.requests += 1
                load.latencies.append(done - started)
                if not status.startswith(b"HTTP/1.1 200"):
                    load.errors += 1
    finally:
        writer.close()


async def run_load(
    port: int,
    token: str,
    tmpls: list[tuple[bytes, bytes]],
    accounts: list[str],
    spread: bool,
    clients: int,
    warmup: float,
    duration: float,
    counter_start: int,
    rate: float | None = None,
    url: str | None = None,
) -> Load:
    head = (
        b"POST /v1/gateway/usage HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + token.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
    )
    load = Load(counter=counter_start)
    start = time.perf_counter()
    pacer = None if rate is None else Pacer(rate, start)
    watch = None if url is None else asyncio.create_task(_watch_lag(url, load, start + warmup))
    await asyncio.gather(
        *[
            _client(
                port, head, tmpls, accounts, spread, load, start + warmup, start + warmup + duration, pacer
            )
            for _ in range(clients)
        ]
    )
    if watch is not None:
        stopped = time.perf_counter()
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await _wait_applied(url or "")
        load.drain_s = time.perf_counter() - stopped
    return load


async def _oldest_wait(db: Any) -> float:
    """Seconds the oldest stored-but-unapplied usage has waited (0: the applier is caught up)."""
    from sqlalchemy import text

    from creditgate.clock import system_clock

    async with db.read() as conn:
        oldest = (await conn.execute(text("SELECT min(received_at) FROM usage_pending"))).scalar_one()
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # SQLite through text(): ISO 8601
        from datetime import datetime

        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (system_clock() - oldest).total_seconds())


async def _watch_lag(url: str, load: Load, measure_from: float) -> None:
    from creditgate.config import normalize_database_url
    from creditgate.db import Database

    db = Database(normalize_database_url(url), pool_size=1)
    try:
        while True:
            try:
                lag = await _oldest_wait(db)
            except Exception as exc:  # a baseline run of code without the applier's queue
                log(f"  (applier lag not measured: {type(exc).__name__})")
                return
            if time.perf_counter() >= measure_from:
                load.lags.append(lag)
            await asyncio.sleep(0.1)
    finally:
        await db.dispose()


async def _wait_applied(url: str, timeout: float = 120.0) -> None:
    from creditgate.config import normalize_database_url
    from creditgate.db import Database

    db = Database(normalize_database_url(url), pool_size=1)
    try:
        deadline = time.perf_counter() + timeout
        with contextlib.suppress(Exception):  # no queue: nothing to wait for
            while await _oldest_wait(db) > 0 and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
    finally:
        await db.dispose()


def peak_rss_mb(pgid: int | None) -> float:
    """The largest peak resident set (VmHWM) among the server's processes, in MB."""
    if pgid is None:
        return 0.0
    from bench_support import _group_pids

    peak = 0
    for pid in _group_pids(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


def measure(
    name: str,
    server: Server,
    args: argparse.Namespace,
    tmpls: list[tuple[bytes, bytes]],
    accounts: list[str],
    counter_start: int,
    url: str | None = None,
    rate: float | None = None,
) -> tuple[Load, dict[str, float]]:
    port = server.port
    pgid = server.proc.pid if server.proc is not None else None
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    cpu_before = cpu_seconds(pgid, url)
    load = runner(
        run_load(
            port,
            ADMIN_TOKEN,
            tmpls,
            accounts,
            args.spread,
            args.clients,
            args.warmup,
            args.duration,
            counter_start,
            None if rate is None else rate / args.batch,
            url,
        )
    )
    cpu_after = cpu_seconds(pgid, url)
    lags = sorted(load.lags) or [0.0]
    per_k = max(load.requests * args.batch, 1) / 1000 * (args.duration + args.warmup) / args.duration
    lat = sorted(load.latencies) or [0.0]
    figures = {
        "events_s": load.requests * args.batch / args.duration,
        "req_s": load.requests / args.duration,
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "errors": load.errors,
        "server_ms_per_k": (cpu_after[0] - cpu_before[0]) * 1000 / per_k,
        "pg_ms_per_k": (cpu_after[1] - cpu_before[1]) * 1000 / per_k,
        "lag_p99_s": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "drain_s": load.drain_s,
        "rss_mb": peak_rss_mb(pgid),
    }
    applier = (
        f"  applier lag p99 {figures['lag_p99_s']:.2f} s, drained {figures['drain_s']:.1f} s after"
        if url is not None
        else ""
    )
    log(
        f"  {name:6s} {figures['events_s']:>9,.0f} events/s  {figures['req_s']:>7,.1f} req/s  "
        f"p50 {figures['p50_ms']:7.1f} ms  p99 {figures['p99_ms']:7.1f} ms  non-200: {load.errors}  "
        f"CPU per 1k events: server {figures['server_ms_per_k']:.0f} ms, "
        f"postgres {figures['pg_ms_per_k']:.0f} ms  peak RSS {figures['rss_mb']:.0f} MB{applier}"
    )
    return load, figures


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {"ours": [], "paced": [], "bare": []}
    workers = args.workers or 1
    with tempfile.TemporaryDirectory(prefix="creditgate-bench-") as tmp:
        url = create_database(backend, Path(tmp))
        try:
            log(f"[{backend}] preparing {args.accounts} accounts in {url.split('@')[-1]}")
            accounts = prepare(url, args.accounts)
            tmpls = templates(accounts, args.batch, args.spread)
            log(
                f"[{backend}] {args.clients} clients, batches of {args.batch} events "
                f"({len(tmpls[0][0]):,} bytes), "
                f"{'each spread over' if args.spread else 'one account per batch, from'} "
                f"{args.accounts} accounts, "
                f"{workers} uvicorn worker(s), {args.runs} run(s) of {args.warmup:g}+{args.duration:g} s"
            )
            counter = 0
            for run in range(args.runs):
                log(f"[{backend}] run {run + 1}/{args.runs}")
                port = free_port()
                with ours(url, port, workers, Path(tmp)) as server:
                    load, figures = measure("ours", server, args, tmpls, accounts, counter, url)
                    counter = load.counter
                    results["ours"].append(figures)
                    if args.paced_fraction > 0:
                        rate = figures["events_s"] * args.paced_fraction
                        load, paced = measure("paced", server, args, tmpls, accounts, counter, url, rate)
                        counter = load.counter
                        results["paced"].append(paced)
                port = free_port()
                with bare(port, workers) as server:
                    _, figures = measure("bare", server, args, tmpls, accounts, 0)
                results["bare"].append(figures)
            unique = counter * (args.batch - 1) if args.batch > 1 else counter  # the last event repeats
            log(f"[{backend}] {verify(url, unique)}")
        finally:
            drop_database(url)
    return results


BASELINE = ROOT / "bench" / "baseline.json"


def medians(results: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        kind: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for kind, runs in results.items()
        if runs
    }


def summary(
    backend: str, results: dict[str, list[dict[str, float]]], key: str
) -> dict[str, dict[str, float]]:
    med = medians(results)
    o, b = med["ours"]["events_s"], med["bare"]["events_s"]
    spread = [f"{r['events_s']:,.0f}" for r in results["ours"]]
    log(
        f"[{backend}] MEDIAN ours {o:,.0f} events/s (runs: {', '.join(spread)}), "
        f"p50 {med['ours']['p50_ms']:.1f} ms, p99 {med['ours']['p99_ms']:.1f} ms, "
        f"applier lag p99 {med['ours']['lag_p99_s']:.2f} s, peak RSS {med['ours']['rss_mb']:.0f} MB | "
        f"bare FastAPI parse-only {b:,.0f} events/s, p50 {med['bare']['p50_ms']:.1f} ms, "
        f"p99 {med['bare']['p99_ms']:.1f} ms | ratio ours/bare {o / b:.2f}"
    )
    if "paced" in med:
        p = med["paced"]
        log(
            f"[{backend}] MEDIAN paced at {p['events_s']:,.0f} events/s: p50 {p['p50_ms']:.1f} ms, "
            f"p99 {p['p99_ms']:.1f} ms, applier lag p99 {p['lag_p99_s']:.2f} s, peak RSS {p['rss_mb']:.0f} MB"
        )
    stored = orjson.loads(BASELINE.read_bytes()).get(key) if BASELINE.exists() else None
    if stored:
        base = stored["ours"]["events_s"]
        then = stored["ours"]["events_s"] / stored["bare"]["events_s"]
        log(
            f"[{backend}] ratio to baseline ({stored.get('commit', '?')}): {o / base:.2f} "
            f"({o:,.0f} / {base:,.0f} events/s; ours/bare then {then:.2f})"
        )
    return med


def _commit() -> str:
    import subprocess

    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per server per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument(
        "--workers", type=int, default=0, help="uvicorn workers (default 1, as creditgate serve)"
    )
    parser.add_argument(
        "--paced-fraction",
        type=float,
        default=0.8,
        help="then a paced run at this fraction of the full-load rate (0: none)",
    )
    parser.add_argument(
        "--save-baseline", action="store_true", help="store the medians in bench/baseline.json"
    )
    parser.add_argument("--label", default=None, help="what the saved baseline ran (default: HEAD)")
    parser.add_argument(
        "--one-account-per-batch",
        dest="spread",
        action="store_false",
        help="each batch holds one account's events (a gateway token's view)",
    )
    args = parser.parse_args()
    if not 1 <= args.batch <= 1000 or args.runs < 1 or args.duration <= 0 or args.clients < 1:
        parser.error("batch must be 1-1000; runs, duration and clients positive")
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    log(
        f"creditgate ingest benchmark on {os.cpu_count()} CPUs (load generator shares them); "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    all_results = {backend: bench_backend(backend, args) for backend in backends}
    log("")
    saved = orjson.loads(BASELINE.read_bytes()) if BASELINE.exists() else {}
    for backend, results in all_results.items():
        key = (
            f"{backend}/{'spread' if args.spread else 'one-account'}/batch{args.batch}/clients{args.clients}"
        )
        med = summary(backend, results, key)
        if args.save_baseline:
            saved[key] = {
                **med,
                "commit": args.label or _commit(),
                "runs": args.runs,
                "duration": args.duration,
            }
    if args.save_baseline:
        BASELINE.write_bytes(orjson.dumps(saved, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        log(f"baseline saved to {BASELINE}")


if __name__ == "__main__":
    main()
