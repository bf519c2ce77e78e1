"""Benchmark: what the metering proxy adds to a model call. A fake OpenAI upstream runs on
loopback (instant answers; streams at a fixed token rate) and the same calls are made straight
to it and through creditgate (`/openai/v1/...`, which authorizes, forwards, meters and settles
each call), in the same run:

- non-streaming calls at a moderate fixed rate (open loop, each call timed from its scheduled
  send): added p50 and p99 latency, and creditgate's and PostgreSQL's CPU per proxied call;
- streams: added time to first token (p50, p99);
- the most proxied calls per second (closed loop, `--connections` at once), and the direct
  figure beside it;
- the creditgate process's peak RSS (VmHWM).

    python bench/proxy.py                  # PostgreSQL on 127.0.0.1:5432 (a throwaway database)
    python bench/proxy.py --sqlite         # the embedded SQLite store instead
    python bench/proxy.py --runs 3 --seconds 5 --rate 100

Servers are uvicorn with uvloop + httptools, one worker each, started and stopped here. The
load generator is httpx in this process, the same client for both paths. Figures on a shared
machine are only comparable within one run; medians over `--runs` are printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bench_support import (
    PG_ADMIN,
    Server,
    cpu_seconds,
    create_pg_database,
    drop_pg_database,
    free_port,
)

TOKEN = "cg-bench-operator-token"
UPSTREAM_KEY = "sk-bench-upstream"
STREAM_TOKENS = int(os.environ.get("BENCH_STREAM_TOKENS", "20"))
TOKEN_RATE = float(os.environ.get("BENCH_TOKEN_RATE", "100"))  # tokens per second in streams
USAGE = {"prompt_tokens": 20, "completion_tokens": STREAM_TOKENS, "total_tokens": 20 + STREAM_TOKENS}
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 64}

# ---------------------------------------------------------------- the fake upstream


def _chunk(delta: dict[str, Any], usage: Any = None, choices: bool = True) -> bytes:
    data: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    data["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}] if choices else []
    data["usage"] = usage
    return b"data: " + orjson.dumps(data) + b"\n\n"


async def chat(request: Request) -> Response:
    body = orjson.loads(await request.body())
    if not body.get("stream"):
        answer = {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
            ],
            "usage": USAGE,
        }
        return Response(orjson.dumps(answer), media_type="application/json")
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    async def events() -> AsyncIterator[bytes]:
        for i in range(STREAM_TOKENS):
            yield _chunk({"content": f"t{i} "})
            await asyncio.sleep(1 / TOKEN_RATE)
        if with_usage:
            yield _chunk({}, USAGE, choices=False)
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def healthz(_: Request) -> Response:
    return Response(b'{"ok":true}', media_type="application/json")


upstream_app = Starlette(
    routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/healthz", healthz)]
)

# ---------------------------------------------------------------- servers


def uvicorn_cmd(app: str, port: int, factory: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    cmd += ["--app-dir", str(Path(__file__).parent)]
    return cmd + (["--factory"] if factory else [])


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def setup(base: str, upstream: str, accounts: int) -> list[str]:
    """An upstream, and accounts with plenty of credit; returns their api tokens."""
    admin = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as c:
        r = await c.post(
            "/admin/v1/upstreams",
            json={
                "provider": "openai",
                "base_url": upstream + "/v1",
                "api_key": UPSTREAM_KEY,
                "models": ["gpt-4o-mini"],
                "markup_percent": "20",
            },
        )
        assert r.status_code == 201, r.text
        tokens = []
        for i in range(accounts):
            account = f"bench-{os.getpid()}-{i}"
            assert (await c.post("/admin/v1/accounts", json={"id": account})).status_code == 201
            r = await c.post(f"/admin/v1/accounts/{account}/grants", json={"amount_cents": 10**9})
            assert r.status_code == 201, r.text
            r = await c.post(f"/admin/v1/accounts/{account}/tokens", json={"scope": "api"})
            tokens.append(str(r.json()["token"]))
        return tokens


# ---------------------------------------------------------------- load


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


async def one_call(
    client: httpx.AsyncClient, url: str, key: str, stream: bool, start: float | None = None
) -> float:
    """Seconds to the whole answer, or (streams) to the first content token, counted from
    `start` (the time the call was scheduled; now when not given)."""
    body = {**BODY, "stream": True} if stream else BODY
    headers = {"authorization": f"Bearer {key}"}
    start = time.perf_counter() if start is None else start
    if not stream:
        r = await client.post(url, json=body, headers=headers)
        assert r.status_code == 200, r.text
        return time.perf_counter() - start
    first = None
    async with client.stream("POST", url, json=body, headers=headers) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if first is None and line.startswith("data: {") and '"content"' in line:
                first = time.perf_counter() - start
    assert first is not None
    return first


async def open_loop(url: str, keys: list[str], rate: float, seconds: float, stream: bool) -> list[float]:
    """Calls started at a fixed rate (not waiting for answers), each timed from the moment it
    was scheduled, so a stall in the load generator or the server counts against the call
    rather than delaying the calls behind it unseen (coordinated omission)."""
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=500)) as client:
        await asyncio.gather(*(one_call(client, url, k, stream) for k in keys[:5]))  # warm-up
        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            call = one_call(client, url, keys[i % len(keys)], stream, scheduled)
            tasks.append(asyncio.create_task(call))
        answers = await asyncio.gather(*tasks, return_exceptions=True)
        failed = [a for a in answers if isinstance(a, BaseException)]
        if failed:  # reported, not hidden: a loaded machine can time a call out
            print(f"  {len(failed)} of {len(answers)} calls to {url} failed: {failed[0]!r}", flush=True)
        return [a for a in answers if isinstance(a, float)]


async def closed_loop(url: str, keys: list[str], connections: int, seconds: float) -> float:
    """Calls per second with `connections` callers each waiting for its answer."""
    done = 0
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=connections)) as client:
        deadline = time.perf_counter() + seconds

        async def caller(key: str) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await one_call(client, url, key, False)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(caller(keys[i % len(keys)]) for i in range(connections)))
        return done / (time.perf_counter() - start)


def run_once(db_url: str, data_dir: Path, args: argparse.Namespace) -> dict[str, float]:
    up_port, cg_port = free_port(), free_port()
    env = {**os.environ, "BENCH_TOKEN_RATE": str(args.token_rate), "BENCH_STREAM_TOKENS": str(args.tokens)}
    cg_env = {
        **env,
        "CREDITGATE_DATABASE_URL": db_url,
        "CREDITGATE_DATA_DIR": str(data_dir),
        "CREDITGATE_ADMIN_TOKEN": TOKEN,
        "CREDITGATE_RUN_JOBS": "false",
    }
    with Server(uvicorn_cmd("proxy:upstream_app", up_port), env, up_port):
        upstream = f"http://127.0.0.1:{up_port}"
        server = Server(uvicorn_cmd("creditgate.server:make_app", cg_port, factory=True), cg_env, cg_port)
        with server:
            base = f"http://127.0.0.1:{cg_port}"
            keys = asyncio.run(setup(base, upstream, args.accounts))
            direct, proxied = upstream + "/v1/chat/completions", base + "/openai/v1/chat/completions"
            fig: dict[str, float] = {}
            assert server.proc is not None
            for name, url, k in (("direct", direct, [UPSTREAM_KEY]), ("proxied", proxied, keys)):
                before = cpu_seconds(server.proc.pid, db_url)
                lat = asyncio.run(open_loop(url, k, args.rate, args.seconds, stream=False))
                time.sleep(0.5)  # the last settles run after their answers
                after = cpu_seconds(server.proc.pid, db_url)
                if name == "proxied":  # CPU per call: comparable on a shared machine
                    fig["creditgate CPU us/call"] = (after[0] - before[0]) / len(lat) * 1e6
                    fig["PostgreSQL CPU us/call"] = (after[1] - before[1]) / len(lat) * 1e6
                ttft = asyncio.run(open_loop(url, k, args.stream_rate, args.seconds, stream=True))
                fig[f"{name} p50 ms"], fig[f"{name} p99 ms"] = pct(lat, 0.5), pct(lat, 0.99)
                fig[f"{name} ttft p50 ms"], fig[f"{name} ttft p99 ms"] = pct(ttft, 0.5), pct(ttft, 0.99)
                fig[f"{name} max calls/s"] = asyncio.run(closed_loop(url, k, args.connections, args.seconds))
            fig["creditgate peak RSS MiB"] = peak_rss_mib(server.proc.pid)
    for what in ("p50 ms", "p99 ms", "ttft p50 ms", "ttft p99 ms"):
        fig[f"added {what}"] = fig[f"proxied {what}"] - fig[f"direct {what}"]
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sqlite", action="store_true", help="the SQLite store instead of PostgreSQL")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase")
    parser.add_argument("--rate", type=float, default=100.0, help="non-streaming calls/s (open loop)")
    parser.add_argument("--stream-rate", type=float, default=20.0, help="streams started per second")
    parser.add_argument("--tokens", type=int, default=20, help="tokens per stream")
    parser.add_argument("--token-rate", type=float, default=100.0, help="stream tokens per second")
    parser.add_argument("--connections", type=int, default=32, help="callers in the max-throughput phase")
    parser.add_argument("--accounts", type=int, default=16, help="calls spread over this many accounts")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.runs} runs", flush=True)
    runs = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            if args.sqlite:
                url, pg = f"sqlite:///{tmp}/bench.db", None
            else:
                url = pg = create_pg_database()
            try:
                fig = run_once(url, Path(tmp), args)
            finally:
                if pg:
                    drop_pg_database(pg)
        runs.append(fig)
        print(f"run {run + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in fig.items()), flush=True)
    print(f"\nmedians over {len(runs)} runs ({'SQLite' if args.sqlite else 'PostgreSQL at ' + PG_ADMIN}):")
    for key in runs[0]:
        print(f"  {key:28} {statistics.median(r[key] for r in runs):9.1f}")


if __name__ == "__main__":
    main()
