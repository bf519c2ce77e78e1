"""The metering proxy's upstreams: add, list, remove, and find the route of a model.

An upstream is one provider endpoint (`openai` or `anthropic` wire format) with its base URL,
API key (stored encrypted, never shown again), timeouts, the models it offers (each with an
optional alias, optional per-model sell prices and output maximum) and a markup in percent over
the catalog price. Front doors: admin `/admin/v1/upstreams`, `creditgate upstreams`.

Each process caches the routes (and refreshes the price catalog with them); a change made in the
process applies to the next call, one made in another process within about `CACHE_SECONDS`
(routes that old are reloaded in the background, off the calls' latency).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError

from creditgate.errors import Conflict, NotFound, ServiceUnavailable, ValidationError
from creditgate.ids import new_id
from creditgate.metering.catalog import MAX_RATE
from creditgate.money import parse_usd, to_usd_string
from creditgate.workflows import proxy_store as store

if TYPE_CHECKING:
    from creditgate.workflows.context import Context

log = logging.getLogger("creditgate.proxy")
PROVIDERS = ("openai", "anthropic")
UPSTREAM_FIELDS = frozenset(
    {
        "provider",
        "base_url",
        "api_key",
        "models",
        "markup_percent",
        "connect_timeout_seconds",
        "read_timeout_seconds",
    }
)
MODEL_FIELDS = frozenset(
    {
        "model",
        "alias",
        "input_per_mtok_usd",
        "output_per_mtok_usd",
        "cached_input_per_mtok_usd",
        "max_output_tokens",
    }
)
PPM = 1_000_000
MAX_MARKUP_PERCENT = 10_000
MAX_MODELS = 500
MAX_OUTPUT_TOKENS = 10_000_000
CACHE_SECONDS = 5.0  # routes older than this are reloaded in the background
STALE_SECONDS = 60.0  # ... and older than this, before the call (the reloads are failing)


@dataclass(frozen=True)
class Route:
    """A model the proxy offers: where to send it and how to price it."""

    provider: str
    name: str  # what customers call it
    upstream_id: str
    upstream_model: str  # what the upstream calls it
    base_url: str
    api_key: str | None  # plain, in memory only; None when it cannot be decrypted here
    connect_timeout: float
    read_timeout: float
    markup_ppm: int
    input_rate: int | None  # per-model sell prices (units per million tokens), or None: catalog
    output_rate: int | None
    cached_input_rate: int | None
    max_output_tokens: int | None
    offered_since: datetime | None = None  # when its upstream was added

    def __repr__(self) -> str:  # never print the key
        return f"Route({self.provider}/{self.name} -> {self.upstream_id}/{self.upstream_model})"


def _fail(field: str, message: str) -> ValidationError:
    return ValidationError(f"{field} {message}", field=field)


def _string(raw: dict[str, Any], field: str, max_len: int, *, where: str = "") -> str:
    value = raw.get(field)
    name = where + field
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise _fail(name, f"must be a non-empty string of at most {max_len} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise _fail(name, "must not contain control characters")
    return value.strip()


def _seconds(raw: dict[str, Any], field: str, default: int) -> int:
    value = raw.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3600:
        raise _fail(field, "must be a whole number of seconds between 1 and 3600")
    return value * 1000


def _markup_ppm(raw: dict[str, Any]) -> int:
    value = raw.get("markup_percent", "0")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail("markup_percent", 'must be a decimal string such as "20" or "12.5"')
    try:
        percent = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise _fail("markup_percent", 'must be a decimal string such as "20" or "12.5"') from exc
    if not percent.is_finite() or not 0 <= percent <= MAX_MARKUP_PERCENT:
        raise _fail("markup_percent", f"must be between 0 and {MAX_MARKUP_PERCENT}")
    ppm = percent * 10_000
    if ppm != ppm.to_integral_value():
        raise _fail("markup_percent", "has more than 4 decimal places")
    return int(ppm)


def _rate(raw: dict[str, Any], field: str, where: str) -> int | None:
    value = raw.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(where + field, 'must be a decimal string such as "2.50"')
    try:
        units = parse_usd(str(value))
    except ValueError as exc:
        raise _fail(where + field, str(exc)) from exc
    if not 0 <= units <= MAX_RATE:
        raise _fail(where + field, "must be between 0 and 1000000")
    return units


def _model(index: int, raw: Any) -> dict[str, Any]:
    where = f"models[{index}]."
    if isinstance(raw, str):
        raw = {"model": raw}
    if not isinstance(raw, dict):
        raise _fail(f"models[{index}]", "must be a model name or an object with a model")
    for key in raw:
        if key not in MODEL_FIELDS:
            raise _fail(where + str(key), "is not a known field")
    model = _string(raw, "model", 200, where=where)
    alias = _string(raw, "alias", 200, where=where) if raw.get("alias") is not None else None
    rates = {f: _rate(raw, f, where) for f in ("input_per_mtok_usd", "output_per_mtok_usd")}
    cached = _rate(raw, "cached_input_per_mtok_usd", where)
    if (rates["input_per_mtok_usd"] is None) != (rates["output_per_mtok_usd"] is None) or (
        cached is not None and rates["input_per_mtok_usd"] is None
    ):
        raise _fail(where + "input_per_mtok_usd", "and output_per_mtok_usd go together (or neither)")
    max_out = raw.get("max_output_tokens")
    if max_out is not None and (
        isinstance(max_out, bool) or not isinstance(max_out, int) or not 1 <= max_out <= MAX_OUTPUT_TOKENS
    ):
        raise _fail(where + "max_output_tokens", f"must be an integer between 1 and {MAX_OUTPUT_TOKENS}")
    input_rate = rates["input_per_mtok_usd"]
    return {
        "name": alias or model,
        "upstream_model": model,
        "input_rate": input_rate,
        "output_rate": rates["output_per_mtok_usd"],
        "cached_input_rate": cached if cached is not None else input_rate,
        "max_output_tokens": max_out,
    }


def parse_upstream(raw: Any) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
    """(row without the key, the plain key, model rows); every error names its field."""
    if not isinstance(raw, dict):
        raise ValidationError("request body must be a JSON object", field="body")
    for key in raw:
        if key not in UPSTREAM_FIELDS:
            raise _fail(str(key), "is not a known field")
    provider = raw.get("provider")
    if provider not in PROVIDERS:
        raise _fail("provider", f"must be one of {', '.join(PROVIDERS)}")
    base_url = _string(raw, "base_url", 500).rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise _fail("base_url", "must be an http(s) URL such as https://api.openai.com/v1")
    api_key = raw.get("api_key")
    if not isinstance(api_key, str) or not api_key or len(api_key) > 2000 or not api_key.isprintable():
        raise _fail("api_key", "must be a non-empty string of at most 2000 printable characters")
    models = raw.get("models")
    if not isinstance(models, list) or not 1 <= len(models) <= MAX_MODELS:
        raise _fail("models", f"must be a list of 1 to {MAX_MODELS} models")
    parsed = [_model(i, m) for i, m in enumerate(models)]
    names = [m["name"] for m in parsed]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _fail(f"models[{i}]", f"offers {name!r} twice")
    row = {
        "provider": provider,
        "base_url": base_url,
        "markup_ppm": _markup_ppm(raw),
        "connect_timeout_ms": _seconds(raw, "connect_timeout_seconds", 10),
        "read_timeout_ms": _seconds(raw, "read_timeout_seconds", 600),
    }
    return row, api_key, [{**m, "provider": provider} for m in parsed]


def _percent(ppm: int) -> str:
    text = format(Decimal(ppm) / 10_000, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def upstream_view(row: Any, models: list[Any]) -> dict[str, Any]:
    """The JSON shape of an upstream; the API key is never part of it."""

    def model_view(m: Any) -> dict[str, Any]:
        priced = m.input_rate is not None
        return {
            "name": m.name,
            "model": m.upstream_model,
            "alias": m.name if m.name != m.upstream_model else None,
            "input_per_mtok_usd": to_usd_string(m.input_rate) if priced else None,
            "output_per_mtok_usd": to_usd_string(m.output_rate) if priced else None,
            "cached_input_per_mtok_usd": to_usd_string(m.cached_input_rate) if priced else None,
            "max_output_tokens": m.max_output_tokens,
        }

    return {
        "id": row.id,
        "provider": row.provider,
        "base_url": row.base_url,
        "markup_percent": _percent(row.markup_ppm),
        "connect_timeout_seconds": row.connect_timeout_ms // 1000,
        "read_timeout_seconds": row.read_timeout_ms // 1000,
        "created_at": row.created_at.isoformat(),
        "models": [model_view(m) for m in models],
    }


async def add_upstream(ctx: Context, raw: Any) -> dict[str, Any]:
    """Store a new upstream. A model without per-model prices must be in the price catalog
    (400 naming it); a model name another upstream of the family offers is a 409."""
    row, api_key, models = parse_upstream(raw)
    now = ctx.clock()
    async with ctx.db.read() as conn:
        await ctx.catalog.refresh(conn)
    for i, m in enumerate(models):
        if m["input_rate"] is None:
            try:
                ctx.catalog.lookup(row["provider"], m["upstream_model"], now)
            except ValidationError as exc:
                raise _fail(
                    f"models[{i}]",
                    f"has no catalog price ({exc.message}); import one or give per-model prices",
                ) from exc
    row = {
        **row,
        "id": new_id("ups"),
        "api_key_encrypted": store.encrypt(ctx.settings, api_key),
        "created_at": now,
    }
    async with ctx.db.write() as conn:
        taken = await store.taken_names(conn, row["provider"], [m["name"] for m in models])
        if taken:
            raise Conflict(f"another {row['provider']} upstream already offers {', '.join(taken)}")
        try:
            await store.insert(conn, row, models)
        except IntegrityError as exc:
            raise Conflict("a concurrent change offered one of these models; retry") from exc
    forget_routes(ctx)
    return await get_upstream(ctx, row["id"])


async def list_upstreams(ctx: Context) -> list[dict[str, Any]]:
    async with ctx.db.read() as conn:
        ups, models = await store.all_rows(conn)
    return [upstream_view(u, [m for m in models if m.upstream_id == u.id]) for u in ups]


async def get_upstream(ctx: Context, upstream_id: str) -> dict[str, Any]:
    for view in await list_upstreams(ctx):
        if view["id"] == upstream_id:
            return view
    raise NotFound(f"no upstream {upstream_id!r}")


async def remove_upstream(ctx: Context, upstream_id: str) -> None:
    """Delete an upstream and its models (NotFound when there is none)."""
    async with ctx.db.write() as conn:
        if not await store.remove(conn, upstream_id):
            raise NotFound(f"no upstream {upstream_id!r}")
    forget_routes(ctx)


# -- routes, cached per process -------------------------------------------------------------


@dataclass
class _Cached:
    """The routes of one database: loaded at `loaded_at`; `generation` bumps on every change
    made in this process, so a load that began before a change does not store stale routes."""

    routes: dict[tuple[str, str], Route] | None = None
    loaded_at: float = 0.0
    generation: int = 0
    refreshing: asyncio.Task[Any] | None = field(default=None, repr=False)


_routes: dict[str, _Cached] = {}


def forget_routes(ctx: Context) -> None:
    """Drop this process's routes at once (an upstream added or removed here): the next call
    loads them again before it is routed."""
    cached = _routes.setdefault(ctx.settings.database_url, _Cached())
    cached.routes = None
    cached.generation += 1


async def _load(ctx: Context) -> dict[tuple[str, str], Route]:
    async with ctx.db.read() as conn:
        ups, models = await store.all_rows(conn)
        await ctx.catalog.refresh(conn)  # the proxy prices from it; refreshed with the routes
    by_id = {u.id: u for u in ups}
    keys = {u.id: _plain_key(ctx, u) for u in ups}
    routes = {}
    for m in models:
        u = by_id[m.upstream_id]
        routes[(m.provider, m.name)] = Route(
            provider=m.provider,
            name=m.name,
            upstream_id=u.id,
            upstream_model=m.upstream_model,
            base_url=u.base_url,
            api_key=keys[u.id],
            connect_timeout=u.connect_timeout_ms / 1000,
            read_timeout=u.read_timeout_ms / 1000,
            markup_ppm=u.markup_ppm,
            input_rate=m.input_rate,
            output_rate=m.output_rate,
            cached_input_rate=m.cached_input_rate,
            max_output_tokens=m.max_output_tokens,
            offered_since=u.created_at,
        )
    return routes


def _plain_key(ctx: Context, upstream: Any) -> str | None:
    """The upstream's key, or None (logged) when this process's secret cannot decrypt it: that
    upstream's models are refused with 503, the others keep working."""
    try:
        return store.decrypt(ctx.settings, upstream.api_key_encrypted)
    except ServiceUnavailable:
        log.warning("upstream %s: its API key cannot be decrypted with this process's secret", upstream.id)
        return None


async def _refresh(ctx: Context, cached: _Cached) -> dict[tuple[str, str], Route]:
    generation = cached.generation
    loaded = await _load(ctx)
    if generation == cached.generation:  # else changed meanwhile: this load may predate it
        cached.routes, cached.loaded_at = loaded, time.monotonic()
    return loaded


def _refresh_in_background(ctx: Context, cached: _Cached) -> None:
    running, loop = cached.refreshing, asyncio.get_running_loop()
    if running is not None and not running.done() and running.get_loop() is loop:
        return
    task = loop.create_task(_refresh(ctx, cached))
    task.add_done_callback(_log_failure)
    cached.refreshing = task


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("proxy: could not refresh the upstreams: %r", task.exception())


async def routes(ctx: Context) -> dict[tuple[str, str], Route]:
    """Every offered model by (provider family, name).

    Routes older than CACHE_SECONDS are served while one background task loads them again
    (so no call waits for that load); a call waits for a load only when there are none yet,
    when this process changed an upstream, or when they are older than STALE_SECONDS (the
    reloads are failing: the call then gets the database's error)."""
    cached = _routes.setdefault(ctx.settings.database_url, _Cached())
    age = time.monotonic() - cached.loaded_at
    if cached.routes is None or age > STALE_SECONDS:
        return await _refresh(ctx, cached)
    if age > CACHE_SECONDS:
        _refresh_in_background(ctx, cached)
    return cached.routes


async def find_route(ctx: Context, provider: str, name: Any) -> Route:
    """The route of a model name (NotFound when no upstream of the family offers it)."""
    route = (await routes(ctx)).get((provider, name)) if isinstance(name, str) else None
    if route is None:
        raise NotFound(f"The model `{name}` does not exist or you do not have access to it.", field="model")
    if route.api_key is None:
        raise ServiceUnavailable(store.UNDECRYPTABLE)
    return route
