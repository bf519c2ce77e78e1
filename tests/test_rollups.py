"""Usage rollups per hour and per day (UTC), per account, provider and model: they add up to
exactly the stored events, duplicates never count, and they follow across batches."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from creditgate.clock import to_ms
from creditgate.config import normalize_database_url
from creditgate.db import Database
from creditgate.metering import service as metering
from tests import support

T0 = datetime(2026, 3, 9, 22, 30, tzinfo=UTC)  # spans midnight and several hours


def test_rollups_match_the_events(server: support.LiveServer, database_url: str) -> None:
    account = support.create_account(server)
    rnd = random.Random(5)
    sent: list[dict[str, Any]] = []
    for i in range(300):
        at = T0 + timedelta(minutes=rnd.randint(0, 60 * 30))
        model, provider = rnd.choice([("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("private", "acme")])
        event = {
            "id": f"e{i}",
            "account_id": account,
            "model": model,
            "provider": provider,
            "input_tokens": rnd.randint(0, 5000),
            "output_tokens": rnd.randint(0, 900),
            "timestamp": to_ms(at),
        }
        if model == "private":
            event["cost_usd"] = f"0.{rnd.randint(1, 999_999):06d}"
        sent.append(event)
    batches = [sent[i : i + 40] for i in range(0, 300, 40)]
    batches.append(sent[:25])  # replays: duplicates must not be rolled up again
    with server.admin() as c:
        for batch in batches:
            assert c.post("/v1/gateway/usage", json={"events": batch}).status_code == 200
    stored = support.query(
        database_url,
        "SELECT occurred_at, provider, model, input_tokens, output_tokens, cost "
        "FROM usage_events WHERE account_id = :a",
        a=account,
    )
    assert len(stored) == 300
    expected: dict[tuple[str, datetime, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for occurred, provider, model, inp, out, cost in stored:
        moment = occurred if isinstance(occurred, datetime) else datetime.fromisoformat(str(occurred))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        hour = moment.replace(minute=0, second=0, microsecond=0)
        for granularity, start in (("hour", hour), ("day", hour.replace(hour=0))):
            acc = expected[(granularity, start, provider, model)]
            for j, value in enumerate((1, int(inp), int(out), int(cost))):
                acc[j] += value

    async def read() -> dict[tuple[str, datetime, str, str], list[int]]:
        db = Database(normalize_database_url(database_url), pool_size=1)
        try:
            async with db.read() as conn:
                got = {}
                for granularity in ("hour", "day"):
                    start, end = datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 12, tzinfo=UTC)
                    for bucket in await metering.usage_buckets(conn, account, granularity, start, end):
                        got[(granularity, bucket.bucket_start)] = [int(bucket.events), int(bucket.cost)]
                by_model = await metering.usage_by_model(
                    conn, account, datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 12, tzinfo=UTC)
                )
                hourly_model = await metering.usage_by_model(
                    conn, account, T0.replace(minute=0), T0 + timedelta(hours=5)
                )
                return got, by_model, hourly_model  # type: ignore[return-value]
        finally:
            await db.dispose()

    got, by_model, hourly_model = asyncio.run(read())  # type: ignore[misc]
    per_bucket: dict[tuple[str, datetime], list[int]] = defaultdict(lambda: [0, 0])
    for (granularity, start, _, _), (n, _, _, cost) in expected.items():
        per_bucket[(granularity, start)][0] += n
        per_bucket[(granularity, start)][1] += cost
    assert got == dict(per_bucket)
    assert len([k for k in got if k[0] == "day"]) >= 2  # the data spans midnight
    totals = {
        (r.provider, r.model): (int(r.events), int(r.input_tokens), int(r.output_tokens), int(r.cost))
        for r in by_model
    }
    want: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (granularity, _, provider, model), sums in expected.items():
        if granularity == "day":
            for j in range(4):
                want[(provider, model)][j] += sums[j]
    assert totals == {k: tuple(v) for k, v in want.items()}
    assert sum(int(r.events) for r in hourly_model) == sum(
        v[0]
        for k, v in expected.items()
        if k[0] == "hour" and T0.replace(minute=0) <= k[1] < T0 + timedelta(hours=5)
    )
    assert sum(v[3] for k, v in expected.items() if k[0] == "day") == -support.balance_units(server, account)
