"""Seeded usage for the usage-report tests: random events over the last weeks through the
gateway API, and the stored events read back to compute what every report must show."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from creditgate.clock import ManualClock, to_ms
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.workflows.context import Context
from tests import support

T = TypeVar("T")


def run_at(database_url: str, now: datetime, scenario: Callable[[Context], Awaitable[T]]) -> T:
    """Run `scenario` with a job Context on the database whose clock stands at `now`."""

    async def main() -> T:
        db = Database(normalize_database_url(database_url), pool_size=2)
        try:
            return await scenario(support.job_context(db, ManualClock(now)))
        finally:
            await db.dispose()

    return asyncio.run(main())


# One model name under two providers, so series labels must tell them apart.
MODELS = (
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("acme", "private"),
    ("azure", "gpt-4o"),
)


@dataclass(frozen=True)
class StoredEvent:
    occurred_at: datetime
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost: int


def seed_usage(
    server: support.LiveServer,
    account: str,
    now: datetime,
    *,
    count: int = 160,
    days: int = 35,
    seed: int = 7,
) -> None:
    """`count` events between `days` days before `now` and `now`, sent in batches, the first
    batch sent twice (duplicates must count once)."""
    rnd = random.Random(seed)
    events: list[dict[str, Any]] = []
    for i in range(count):
        at = now - timedelta(minutes=rnd.randint(1, days * 24 * 60))
        provider, model = rnd.choice(MODELS)
        event: dict[str, Any] = {
            "id": f"u{i}",
            "account_id": account,
            "model": model,
            "provider": provider,
            "input_tokens": rnd.randint(500, 4000),
            "output_tokens": rnd.randint(0, 900),
            "cached_tokens": rnd.randint(0, 500),  # the cached part of the input
            "timestamp": to_ms(at),
        }
        if provider != "openai":
            event["cost_usd"] = f"0.{rnd.randint(1, 999_999):06d}"
        events.append(event)
    batches = [events[i : i + 50] for i in range(0, count, 50)]
    with server.admin() as c:
        for batch in [*batches, batches[0]]:
            r = c.post("/v1/gateway/usage", json={"events": batch})
            assert r.status_code == 200 and r.json()["rejected"] == [], r.text


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stored_events(database_url: str, account: str) -> list[StoredEvent]:
    """The account's stored events (read from a thread of its own: Playwright's sync API
    keeps an event loop running in the test's thread)."""
    sql = (
        "SELECT occurred_at, provider, model, input_tokens, output_tokens, cached_tokens, cost "
        "FROM usage_events WHERE account_id = :a"
    )
    with ThreadPoolExecutor(1) as pool:
        rows = pool.submit(support.query, database_url, sql, a=account).result()
    return [StoredEvent(_aware(r[0]), r[1], r[2], *(int(v) for v in r[3:])) for r in rows]


def cost_per_bucket(
    events: list[StoredEvent], start: datetime, end: datetime, step: timedelta
) -> dict[tuple[str, str], list[int]]:
    """{(provider, model): cost per bucket of `step`} over [start, end), from the events."""
    count = (end - start) // step
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * count)
    for e in events:
        if start <= e.occurred_at < end:
            out[(e.provider, e.model)][(e.occurred_at - start) // step] += e.cost
    return dict(out)


def totals_by_model(
    events: list[StoredEvent], start: datetime, end: datetime
) -> dict[tuple[str, str], list[int]]:
    """{(provider, model): [requests, prompt, completion, cached, cost]} over [start, end)."""
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 5)
    for e in events:
        if start <= e.occurred_at < end:
            acc = out[(e.provider, e.model)]
            for i, value in enumerate((1, e.input_tokens, e.output_tokens, e.cached_tokens, e.cost)):
                acc[i] += value
    return dict(out)
