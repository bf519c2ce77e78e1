"""History benchmark (issue 13, "Growth"): reads and ingest on a PostgreSQL database that holds a
long usage history, next to an empty one.

    .venv/bin/python bench/history.py                      # 10,000,000 events, 10,000 accounts
    .venv/bin/python bench/history.py --events 1000000     # a quick run

The script creates its own PostgreSQL database (CREDITGATE_BENCH_PG, default
postgresql://postgres@127.0.0.1:5432/postgres), migrates it, and seeds it with COPY (asyncpg
copy_records_to_table), never through the API: --accounts accounts (UUIDs, prepaid) and
--events usage events spread uniformly over the --months calendar months up to now, month by
month straight into the monthly partitions. What the usage applier would have written is
then derived from those events in SQL: hour and day rollups, a credit and one usage debit per
account and day in the ledger, the balances, and the ids received within the deduplication
horizon. Reconcile must be ok. Then `creditgate serve` (jobs off) is started on it and
--requests requests of each kind are timed over HTTP from --clients keep-alive connections,
each for a random account: the Cloudflare credit balance, the Cloudflare usage history of the
last 30 days by day, the xAI invoice preview and xAI usage analytics (last 30 days by day,
grouped by description, up to now). Last, ingest: bench/ingest.py's load generator against
this database and against an empty one with as many accounts, alternated --runs times; it
prints the median events/s, CPU per 1k events and the ratio history/empty (goal >= 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench_support import cpu_seconds, create_pg_database, drop_pg_database, free_port
from ingest import ADMIN_TOKEN, MODELS, measure, ours, templates

CREDIT = 10**12  # $1,000 per account, ledger units
HORIZON = timedelta(days=40)  # CREDITGATE_DEDUPE_HORIZON_DAYS's default
KINDS = ("credit-balance", "usage-history-30d", "xai-invoice-preview", "xai-usage-analytics")


def log(message: str) -> None:
    print(message, flush=True)


# ---- seed -----------------------------------------------------------------------------------


def _month(moment: datetime, add: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 + add
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


async def _migrate(url: str) -> None:
    from creditgate.config import normalize_database_url
    from creditgate.db import Database
    from creditgate.workflows.database import prepare_database

    db = Database(normalize_database_url(url), pool_size=1)
    try:
        await prepare_database(db)
    finally:
        await db.dispose()


async def _partitions(url: str, first: datetime, now: datetime) -> None:
    """The monthly partitions back to `first` (the migration made the current and next ones)."""
    from creditgate.config import normalize_database_url
    from creditgate.db import Database
    from creditgate.metering import retention

    db = Database(normalize_database_url(url), pool_size=1)
    try:
        async with db.write() as conn:
            existing = await retention.monthly_partitions(conn)
            start = first
            while start <= now:
                if start not in existing:
                    await retention.create_partition(conn, start)
                start = _month(start, 1)
    finally:
        await db.dispose()


def _events(accounts: list[str], count: int, lo: datetime, hi: datetime, first_id: int) -> Any:
    """`count` usage event records in [lo, hi), for random accounts (rows of usage_events)."""
    rnd = random.Random(first_id)
    span = (hi - lo).total_seconds()
    models = [(p, m) for p, m in MODELS]
    keys = [None, "k1", "k2", "k3"]
    n_accounts = len(accounts)
    for i in range(count):
        at = lo + timedelta(seconds=rnd.random() * span)
        provider, model = models[rnd.randrange(5)]
        inp = rnd.randrange(10, 8000)
        out = rnd.randrange(1, 2000)
        yield (
            accounts[rnd.randrange(n_accounts)], f"h{first_id + i}", at, provider, model, inp, out,
            inp // 4, inp * 2_500 + out * 10_000, None, None, None, at + timedelta(seconds=1),
            keys[i & 3],
        )  # fmt: skip


COPY_COLUMNS = (
    "account_id", "event_id", "occurred_at", "provider", "model", "input_tokens", "output_tokens",
    "cached_tokens", "cost", "price_id", "hold_id", "metadata", "received_at", "api_key_id",
)  # fmt: skip

DROP = [
    "ALTER TABLE usage_events DROP CONSTRAINT fk_usage_events_account_id_accounts",
    "ALTER TABLE usage_events DROP CONSTRAINT pk_usage_events",
    "DROP INDEX ix_usage_events_account_id_occurred_at",
    "ALTER TABLE usage_rollups DROP CONSTRAINT pk_usage_rollups",
]
REBUILD = [
    "ALTER TABLE usage_events ADD CONSTRAINT pk_usage_events PRIMARY KEY (account_id, event_id, occurred_at)",
    "CREATE INDEX ix_usage_events_account_id_occurred_at ON usage_events (account_id, occurred_at)",
    "ALTER TABLE usage_events ADD CONSTRAINT fk_usage_events_account_id_accounts FOREIGN KEY (account_id) "
    "REFERENCES accounts (id)",
]
DERIVE = [
    (
        "hour rollups",
        "INSERT INTO usage_rollups (account_id, granularity, bucket_start, provider, model, api_key_id, "
        "events, input_tokens, output_tokens, cached_tokens, cost) SELECT account_id, 'hour', "
        "date_trunc('hour', occurred_at, 'UTC'), provider, model, coalesce(api_key_id, ''), count(*), "
        "sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(cost) FROM usage_events "
        "GROUP BY 1, 3, 4, 5, 6",
    ),
    (
        "day rollups",
        "INSERT INTO usage_rollups (account_id, granularity, bucket_start, provider, model, api_key_id, "
        "events, input_tokens, output_tokens, cached_tokens, cost) SELECT account_id, 'day', "
        "date_trunc('day', bucket_start, 'UTC'), provider, model, api_key_id, sum(events), "
        "sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(cost) FROM usage_rollups "
        "WHERE granularity = 'hour' GROUP BY 1, 3, 4, 5, 6",
    ),
    (
        "rollup key",
        "ALTER TABLE usage_rollups ADD CONSTRAINT pk_usage_rollups PRIMARY KEY (account_id, granularity, "
        "bucket_start, provider, model, api_key_id)",
    ),
    (
        "ledger credits",
        "INSERT INTO ledger_entries (account_id, kind, amount, balance_after, reason, created_at) "
        f"SELECT id, 'adjustment', {CREDIT}, {CREDIT}, 'bench credit', created_at FROM accounts ORDER BY id",
    ),
    (
        "ledger usage debits (one per account and day)",
        "INSERT INTO ledger_entries (account_id, kind, amount, balance_after, reason, created_at) "
        f"SELECT account_id, 'usage', -cost, {CREDIT} - sum(cost) OVER (PARTITION BY account_id "
        "ORDER BY day), "
        "'usage', least(day + interval '23 hours', $1::timestamptz) FROM (SELECT account_id, bucket_start "
        "AS day, sum(cost) AS cost FROM usage_rollups WHERE granularity = 'day' GROUP BY 1, 2) d "
        "ORDER BY account_id, day",
    ),
    (
        "balances",
        f"UPDATE accounts a SET balance = {CREDIT} - t.total FROM (SELECT account_id, sum(cost) AS total "
        "FROM usage_rollups WHERE granularity = 'day' GROUP BY 1) t WHERE a.id = t.account_id",
    ),
    (
        "event ids within the deduplication horizon",
        "INSERT INTO usage_event_ids (account_id, event_id, received_at) SELECT account_id, event_id, "
        "received_at FROM usage_events WHERE received_at >= $1::timestamptz",
    ),
    ("analyze", "ANALYZE"),
]


async def _open_accounts(conn: Any, ids: list[str], at: datetime) -> None:
    await conn.copy_records_to_table(
        "accounts",
        records=[(a, "bench", "USD", "prepaid", 0, None, 0, 0, at) for a in ids],
        columns=["id", "name", "currency", "mode", "postpaid_hard_limit", "postpaid_soft_limit",
                 "balance", "held", "created_at"],
    )  # fmt: skip


async def _seed(url: str, ids: list[str], events: int, months: int, now: datetime) -> float:
    """Accounts, events by COPY, then what the applier would have written; returns seconds."""
    import asyncpg

    started = time.perf_counter()
    first = _month(now, -(months - 1))
    await _partitions(url, first, now)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute("SET work_mem = '256MB'")
        await _open_accounts(conn, ids, first)
        for sql in DROP:  # bulk load first, keys after (as pg_restore does)
            await conn.execute(sql)
        log(f"  {len(ids):,} accounts opened")
        span = (now - first).total_seconds()
        done = 0
        start = first
        while start < now:
            end = min(_month(start, 1), now)
            count = events - done if end == now else round(events * (end - start).total_seconds() / span)
            t0 = time.perf_counter()
            await conn.copy_records_to_table(
                f"usage_events_p{start:%Y%m}",
                records=_events(ids, count, start, end, done),
                columns=COPY_COLUMNS,
            )
            done += count
            rate = count / max(time.perf_counter() - t0, 1e-9)
            log(f"  {start:%Y-%m}: {count:,} events COPied ({rate:,.0f}/s), {done:,} of {events:,}")
            start = end
        log(f"  events COPied in {time.perf_counter() - started:.0f} s; rebuilding their keys")
        for sql in REBUILD:
            t0 = time.perf_counter()
            await conn.execute(sql)
            log(f"  {sql.split(' (')[0][:90]} ({time.perf_counter() - t0:.1f} s)")
        for name, sql in DERIVE:
            t0 = time.perf_counter()
            params = {"usage debits": [now], "event ids": [now - HORIZON]}
            status = await conn.execute(sql, *next((v for k, v in params.items() if k in name), []))
            log(f"  {name}: {status} ({time.perf_counter() - t0:.1f} s)")
    finally:
        await conn.close()
    return time.perf_counter() - started


def _verify(url: str) -> str:
    """Reconcile must be ok over the seeded history."""
    from creditgate.billing.reconcile import reconcile_report
    from creditgate.config import normalize_database_url
    from creditgate.db import Database

    async def main() -> str:
        db = Database(normalize_database_url(url), pool_size=1)
        try:
            t0 = time.perf_counter()
            async with db.read() as conn:
                report = await reconcile_report(conn)
            if not report["ok"]:
                raise SystemExit(f"RECONCILE FAILED: {report['problems'][:5]}")
            took = time.perf_counter() - t0
            return f"reconcile ok over {report['accounts_checked']:,} accounts in {took:.1f} s"
        finally:
            await db.dispose()

    return asyncio.run(main())


# ---- reads ----------------------------------------------------------------------------------


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
    if method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def read_requests(kind: str, account: str, now: datetime) -> bytes:
    """One request of `kind` for `account`, the last 30 days up to `now` where it takes a range."""
    cf = f"/client/v4/accounts/{account}/ai-gateway/billing"
    since = now - timedelta(days=30)
    if kind == "credit-balance":
        return _request("GET", f"{cf}/credit-balance")
    if kind == "usage-history-30d":
        start, end = int(since.timestamp() * 1000), int(now.timestamp() * 1000)
        return _request(
            "GET", f"{cf}/usage-history?value_grouping_window=day&start_time={start}&end_time={end}"
        )
    if kind == "xai-invoice-preview":
        return _request("GET", f"/v1/billing/teams/{account}/postpaid/invoice/preview")
    body = {
        "analyticsRequest": {
            "timeRange": {
                "startTime": since.strftime("%Y-%m-%d 00:00:00"),
                "endTime": now.strftime("%Y-%m-%d %H:%M:%S"),
                "timezone": "Etc/GMT",
            },
            "timeUnit": "TIME_UNIT_DAY",
            "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
            "groupBy": ["description"],
            "filters": [],
        }
    }
    return _request("POST", f"/v1/billing/teams/{account}/usage", orjson.dumps(body))


async def _time_requests(port: int, requests: list[bytes], clients: int) -> tuple[list[float], list[bytes]]:
    """Latency of every request (seconds) over `clients` keep-alive connections; non-200 answers."""
    latencies: list[float] = []
    errors: list[bytes] = []
    queue = iter(requests)

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors.append(head.split(b"\r\n", 1)[0] + b" " + body[:300])
        finally:
            writer.close()

    await asyncio.gather(*[client() for _ in range(clients)])
    return latencies, errors


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def bench_reads(url: str, ids: list[str], args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, float]]:
    now = datetime.now(UTC)
    rnd = random.Random(7)
    out: dict[str, dict[str, float]] = {}
    with ours(url, free_port(), 1, tmp) as server:
        pgid = server.proc.pid if server.proc is not None else None
        for kind in KINDS:
            warm = [read_requests(kind, rnd.choice(ids), now) for _ in range(min(100, args.requests))]
            asyncio.run(_time_requests(server.port, warm, args.clients))
            batch = [read_requests(kind, rnd.choice(ids), now) for _ in range(args.requests)]
            t0, cpu0 = time.perf_counter(), cpu_seconds(pgid, url)
            latencies, errors = asyncio.run(_time_requests(server.port, batch, args.clients))
            elapsed, cpu1 = time.perf_counter() - t0, cpu_seconds(pgid, url)
            if errors:
                log(f"  {kind}: {len(errors)} non-200, e.g. {errors[0][:300]!r}")
            out[kind] = {"p50_ms": _pct(latencies, 0.5), "p99_ms": _pct(latencies, 0.99),
                         "req_s": len(latencies) / elapsed, "errors": len(errors),
                         "server_cpu_ms": (cpu1[0] - cpu0[0]) * 1000 / len(latencies),
                         "pg_cpu_ms": (cpu1[1] - cpu0[1]) * 1000 / len(latencies)}  # fmt: skip
            verdict = "ok" if out[kind]["p99_ms"] < 50 else "OVER 50 ms"
            log(
                f"  {kind:22s} p50 {out[kind]['p50_ms']:6.1f} ms  p99 {out[kind]['p99_ms']:6.1f} ms  "
                f"{out[kind]['req_s']:6.0f} req/s  CPU per request: server "
                f"{out[kind]['server_cpu_ms']:.1f} ms, postgres {out[kind]['pg_cpu_ms']:.1f} ms  "
                f"({len(latencies)} requests, {args.clients} clients): "
                f"{verdict}"
            )
    return out


# ---- ingest ---------------------------------------------------------------------------------


def bench_ingest(
    history_url: str, history_ids: list[str], args: argparse.Namespace, tmp: Path
) -> dict[str, list[dict[str, float]]]:
    """Ingest on the history database and on an empty one (as many accounts), alternated."""
    empty_url = create_pg_database()
    results: dict[str, list[dict[str, float]]] = {"history": [], "empty": []}
    try:
        asyncio.run(_migrate(empty_url))
        empty_ids = [str(uuid.uuid4()) for _ in history_ids]
        asyncio.run(_credit_accounts(empty_url, empty_ids))
        load_args = argparse.Namespace(
            batch=args.batch,
            clients=args.ingest_clients,
            spread=True,
            warmup=args.warmup,
            duration=args.duration,
        )
        counters = {"history": 10**9, "empty": 10**9}  # ids apart from the seeded ones
        for run in range(args.runs):
            for name, url, ids in (("history", history_url, history_ids), ("empty", empty_url, empty_ids)):
                log(f"  run {run + 1}/{args.runs}, {name} database")
                with ours(url, free_port(), 1, tmp) as server:
                    tmpls = templates(ids, args.batch, True)
                    load, figures = measure(name, server, load_args, tmpls, ids, counters[name], url)
                    counters[name] = load.counter
                results[name].append(figures)
    finally:
        drop_pg_database(empty_url)
    return results


async def _credit_accounts(url: str, ids: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        await _open_accounts(conn, ids, now)
        for _, sql in DERIVE[3:4]:
            await conn.execute(sql)
        await conn.execute(f"UPDATE accounts SET balance = {CREDIT}")
    finally:
        await conn.close()


def _cpu(figures: dict[str, float]) -> float:
    return figures["server_ms_per_k"] + figures["pg_ms_per_k"]


# ---- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument(
        "--months", type=int, default=13, help="calendar months of history, the current one included"
    )
    parser.add_argument("--requests", type=int, default=2000, help="timed requests of each read kind")
    parser.add_argument(
        "--clients", type=int, default=2, help="concurrent keep-alive connections for the reads"
    )
    parser.add_argument("--runs", type=int, default=3, help="ingest runs per database (alternated)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured ingest seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=100, help="events per ingest request")
    parser.add_argument("--ingest-clients", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the seeded database (prints its URL)")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    if args.events < 1 or args.accounts < 1 or args.months < 1 or args.requests < 1:
        parser.error("events, accounts, months and requests must be positive")
    log(
        f"creditgate history benchmark on {os.cpu_count()} CPUs (load generator shares them); "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    url = create_pg_database()
    try:
        with tempfile.TemporaryDirectory(prefix="creditgate-history-") as tmp:
            log(f"seeding {args.events:,} events over {args.accounts:,} accounts and {args.months} months")
            asyncio.run(_migrate(url))
            ids = [str(uuid.UUID(int=random.getrandbits(128), version=4)) for _ in range(args.accounts)]
            seconds = asyncio.run(_seed(url, ids, args.events, args.months, datetime.now(UTC)))
            log(f"seeded in {seconds:.0f} s; {_verify(url)}")
            log("reads (each through HTTP, random accounts):")
            reads = bench_reads(url, ids, args, Path(tmp))
            if not args.skip_ingest:
                log(
                    f"ingest, {args.ingest_clients} clients, batches of {args.batch}, "
                    "spread over the accounts:"
                )
                results = bench_ingest(url, ids, args, Path(tmp))
                med = {
                    k: {f: statistics.median(r[f] for r in runs) for f in runs[0]}
                    for k, runs in results.items()
                }
                h, e = med["history"], med["empty"]
                log(
                    f"MEDIAN ingest at {args.events:,} stored events {h['events_s']:,.0f} events/s "
                    f"(CPU per 1k: server {h['server_ms_per_k']:.0f} ms, "
                    f"postgres {h['pg_ms_per_k']:.0f} ms) | "
                    f"empty {e['events_s']:,.0f} events/s (server {e['server_ms_per_k']:.0f} ms, "
                    f"postgres {e['pg_ms_per_k']:.0f} ms) | ratio {h['events_s'] / e['events_s']:.2f} "
                    f"(goal >= 0.8); CPU per event ratio empty/history "
                    f"{_cpu(e) / _cpu(h):.2f}"
                )
            worst = max(r["p99_ms"] for r in reads.values())
            log(f"reads: worst p99 {worst:.1f} ms (goal < 50 ms each)")
    finally:
        if args.keep:
            log(f"kept {url}")
        else:
            drop_pg_database(url)


if __name__ == "__main__":
    sys.exit(main())
