"""The price catalog: effective-dated integer rates per provider/model.

A price row never changes; a new price is a new row with a later `effective_from`, so past
usage is never repriced. The in-process cache is refreshed whenever the table's highest id
moves, which one cheap query per ingest batch detects.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.errors import Conflict, ValidationError
from creditgate.metering import repository as repo
from creditgate.money import parse_usd, to_usd_string


@dataclass(frozen=True)
class Price:
    id: int
    provider: str
    model: str
    effective_from: datetime
    input_rate: int
    output_rate: int
    cached_input_rate: int
    request_fee: int


class PriceCatalog:
    """A cached view of the prices table. One instance per process."""

    def __init__(self) -> None:
        self._version = -1
        self._by_key: dict[tuple[str, str], list[Price]] = {}
        self._starts: dict[tuple[str, str], list[datetime]] = {}
        self._providers: dict[str, list[str]] = {}

    async def refresh(self, conn: AsyncConnection) -> None:
        version = await repo.catalog_version(conn)
        if version == self._version:
            return
        by_key: dict[tuple[str, str], list[Price]] = {}
        for row in await repo.all_prices(conn):
            price = Price(**{k: getattr(row, k) for k in Price.__dataclass_fields__})
            by_key.setdefault((price.provider, price.model), []).append(price)
        providers: dict[str, list[str]] = {}
        for provider, model in by_key:
            providers.setdefault(model, []).append(provider)
        self._by_key = by_key
        self._starts = {k: [p.effective_from for p in v] for k, v in by_key.items()}
        self._providers = providers
        self._version = version

    def lookup(self, provider: str | None, model: str, at: datetime) -> Price:
        """The price in force at `at`. Raises ValidationError naming the field at fault."""
        if provider is None:
            candidates = self._providers.get(model, [])
            if len(candidates) > 1:
                raise ValidationError(
                    f"model {model!r} is priced for several providers; send provider", field="provider"
                )
            if not candidates:
                raise ValidationError(
                    f"no price for model {model!r}; send cost_usd or import a price", field="model"
                )
            provider = candidates[0]
        key = (provider, model)
        starts = self._starts.get(key)
        if not starts:
            raise ValidationError(
                f"no price for {provider}/{model}; send cost_usd or import a price", field="model"
            )
        index = bisect.bisect_right(starts, at) - 1
        if index < 0:
            raise ValidationError(
                f"no price for {provider}/{model} at that time (prices start {starts[0].isoformat()})",
                field="timestamp",
            )
        return self._by_key[key][index]

    def provider_for(self, model: str) -> str | None:
        candidates = self._providers.get(model, [])
        return candidates[0] if len(candidates) == 1 else None


MAX_RATE = 10**15  # $1,000,000 per million tokens (or per request)

_RATE_FIELDS = {
    "input_per_mtok_usd": "input_rate",
    "output_per_mtok_usd": "output_rate",
    "cached_input_per_mtok_usd": "cached_input_rate",
}


_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def parse_price_file(text: str, filename: str) -> list[dict[str, Any]]:
    """Read a JSON (list, or {"prices": [...]}) or CSV price file into raw row dicts."""
    if filename.lower().endswith(".csv"):
        try:
            return [dict(row) for row in csv.DictReader(io.StringIO(text))]
        except csv.Error as exc:
            raise ValidationError(f"not valid CSV: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if isinstance(data, dict):
        data = data.get("prices")
    if not isinstance(data, list):
        raise ValidationError("expected a list of prices, or an object with a 'prices' list")
    return data


def parse_price_rows(raw_rows: list[Any], default_from: datetime) -> list[dict[str, Any]]:
    """Validate every row first; any bad row rejects the whole import (nothing is written)."""
    rows = []
    for index, raw in enumerate(raw_rows):
        if not isinstance(raw, dict):
            raise ValidationError(f"row {index}: must be an object", field=f"prices[{index}]")
        rows.append(_parse_row(index, raw, default_from))
    return rows


def _parse_row(index: int, raw: dict[str, Any], default_from: datetime) -> dict[str, Any]:
    def fail(field: str, msg: str) -> ValidationError:
        return ValidationError(f"row {index}: {field} {msg}", field=f"prices[{index}].{field}")

    known = {"provider", "model", "effective_from", "request_fee_usd", *_RATE_FIELDS}
    for key in raw:
        if key not in known:
            raise fail(key, "is not a known field")
    row: dict[str, Any] = {}
    for key in ("provider", "model"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > (64 if key == "provider" else 200):
            raise fail(key, "must be a non-empty string")
        if "\x00" in value:
            raise fail(key, "must not contain the NUL character")
        row[key] = value.strip()
    for src, dst in (*_RATE_FIELDS.items(), ("request_fee_usd", "request_fee")):
        value = raw.get(src)
        if value in (None, "") and src in ("cached_input_per_mtok_usd", "request_fee_usd"):
            row[dst] = None
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise fail(src, 'must be a decimal string such as "2.50"')
        try:
            units = parse_usd(str(value))
        except ValueError as exc:
            raise fail(src, str(exc)) from exc
        if not 0 <= units <= MAX_RATE:
            raise fail(src, "must be between 0 and 1000000")
        row[dst] = units
    if row["cached_input_rate"] is None:
        row["cached_input_rate"] = row["input_rate"]
    if row["request_fee"] is None:
        row["request_fee"] = 0
    when = raw.get("effective_from")
    if when in (None, ""):
        row["effective_from"] = default_from
    else:
        if not isinstance(when, str):
            raise fail("effective_from", "must be an ISO 8601 timestamp string")
        try:
            moment = datetime.fromisoformat(when.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise fail("effective_from", "must be an ISO 8601 timestamp") from exc
        if moment.tzinfo is None:
            raise fail("effective_from", "must include a timezone (e.g. Z)")
        if not _EARLIEST <= moment <= _LATEST:
            raise fail("effective_from", "must be between 2000 and 2100")
        row["effective_from"] = moment.astimezone(UTC)
    return row


async def import_prices(conn: AsyncConnection, rows: list[dict[str, Any]], now: datetime) -> tuple[int, int]:
    """Insert parsed rows. A row identical to a stored one is skipped; a row that would change
    a stored (provider, model, effective_from) is a Conflict. Returns (inserted, unchanged).
    Imports are serialized, so price ids commit in order and the highest id is a sound cache
    version for every process."""
    await repo.lock_catalog(conn)
    existing = {(p.provider, p.model, p.effective_from): p for p in await repo.all_prices(conn)}
    fresh: list[dict[str, Any]] = []
    unchanged = 0
    seen: set[tuple[str, str, datetime]] = set()
    for row in rows:
        key = (row["provider"], row["model"], row["effective_from"])
        if key in seen:
            raise Conflict(f"{key[0]}/{key[1]} appears twice for {key[2].isoformat()}")
        seen.add(key)
        old = existing.get(key)
        if old is None:
            fresh.append({**row, "created_at": now})
        elif all(
            getattr(old, k) == row[k]
            for k in ("input_rate", "output_rate", "cached_input_rate", "request_fee")
        ):
            unchanged += 1
        else:
            raise Conflict(
                f"{key[0]}/{key[1]} already has a different price from {key[2].isoformat()}; "
                "prices are immutable, add a new effective_from instead"
            )
    try:
        await repo.insert_prices(conn, fresh)
    except IntegrityError as exc:  # a concurrent import stored the same key first
        raise Conflict("a concurrent import changed the catalog; retry the import") from exc
    return len(fresh), unchanged


async def seed_default_catalog(conn: AsyncConnection, now: datetime) -> int:
    """Load the packaged catalog into an empty prices table. Returns rows inserted."""
    if await repo.catalog_version(conn) != 0:
        return 0
    text = resources.files("creditgate.metering").joinpath("default_prices.json").read_text()
    data = json.loads(text)
    as_of = datetime.fromisoformat(data["as_of"] + "T00:00:00+00:00")
    inserted, _ = await import_prices(conn, parse_price_rows(data["prices"], as_of), now)
    return inserted


async def list_prices(conn: AsyncConnection) -> list[Any]:
    return await repo.all_prices(conn)


def price_to_wire(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "provider": p.provider,
        "model": p.model,
        "effective_from": p.effective_from.isoformat(),
        "input_per_mtok_usd": to_usd_string(p.input_rate),
        "output_per_mtok_usd": to_usd_string(p.output_rate),
        "cached_input_per_mtok_usd": to_usd_string(p.cached_input_rate),
        "request_fee_usd": to_usd_string(p.request_fee),
    }
