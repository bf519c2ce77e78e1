"""Property (hypothesis, SQLite and PostgreSQL, live server): over random usage of many models
with odd token counts, the postpaid invoice preview's lines add up to `totalWithCorr`, which
is the ledger's usage debits of the cycle to the cent; the correction line only absorbs the
rounding of the lines; the units per line are the sums of the events; prepaid used plus the
postpaid amount is the total."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from creditgate.money import div_round_half_up, parse_usd
from tests import support
from tests.xai_support import ingest, new_team

MODELS = [
    (p["provider"], p["model"])
    for p in json.loads(
        (Path(__file__).parents[1] / "src/creditgate/metering/default_prices.json").read_text()
    )["prices"]
]


@st.composite
def usage_event(draw: st.DrawFn) -> dict[str, Any]:
    provider, model = draw(st.sampled_from(MODELS))
    prompt = draw(st.integers(0, 3_000_001))
    return {
        "provider": provider,
        "model": model,
        "input_tokens": prompt,
        "cached_tokens": draw(st.integers(0, prompt)),
        "output_tokens": draw(st.integers(0, 700_001)),
    }


# no shrinking: each example is a team on a live server, and the failing one is printed as is
@settings(
    max_examples=12,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    events=st.lists(usage_event(), min_size=1, max_size=30),
    postpaid=st.booleans(),
    credit_cents=st.integers(0, 5000),
)
def test_preview_total_is_the_ledger_debit_to_the_cent(
    server: support.LiveServer, events: list[dict[str, Any]], postpaid: bool, credit_cents: int
) -> None:
    extra = {"mode": "postpaid", "postpaid_limit_cents": 10**7} if postpaid else {}
    team = new_team(server, **extra)
    if credit_cents:
        support.grant(server, team.id, credit_cents)
    ingest(server, team.id, [{"id": uuid.uuid4().hex, **e} for e in events])
    with server.client(team.read) as c:
        r = c.get(team.path("postpaid/invoice/preview"))
    assert r.status_code == 200, r.text
    core = r.json()["coreInvoice"]
    with server.admin() as c:
        entries = c.get(f"/admin/v1/accounts/{team.id}/ledger").json()["entries"]
    usage = -sum(parse_usd(e["amount_usd"]) for e in entries if e["kind"] == "usage")
    total = int(core["totalWithCorr"]["val"])
    assert total == div_round_half_up(usage, 10**7)
    lines = core["lines"]
    assert sum(int(line["amount"]) for line in lines) == total
    corrections = [line for line in lines if line["unitType"] == ""]
    priced = [line for line in lines if line["unitType"] != ""]
    assert len(corrections) <= 1 and 2 * abs(total - sum(int(x["amount"]) for x in priced)) <= len(priced) + 1
    units: Counter[tuple[str, str, str]] = Counter()
    calls: Counter[tuple[str, str]] = Counter()
    for e in events:
        key = (e["provider"], e["model"])
        calls[key] += 1
        units[(*key, "Prompt text tokens")] += e["input_tokens"] - e["cached_tokens"]
        units[(*key, "Cached prompt text tokens")] += e["cached_tokens"]
        units[(*key, "Completion text tokens")] += e["output_tokens"]
    for key, count in calls.items():  # a model used without tokens shows its requests
        tokens = ("Prompt text tokens", "Cached prompt text tokens", "Completion text tokens")
        if not any(units[(*key, unit)] for unit in tokens):
            units[(*key, "Requests")] = count
    assert {(x["clusterName"], x["description"], x["unitType"]): int(x["numUnits"]) for x in priced} == {
        k: v for k, v in units.items() if v
    }
    balance = support.balance_units(server, team.id)
    owed = min(usage, max(0, -balance)) if postpaid else 0
    assert int(core["amountAfterVat"]) == div_round_half_up(owed, 10**7)
    assert total + int(core["prepaidCreditsUsed"]["val"]) == int(core["amountAfterVat"])
    assert -int(core["prepaidCredits"]["val"]) == div_round_half_up(usage - owed + max(0, balance), 10**7)
