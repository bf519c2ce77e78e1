"""Settling holds: the actual usage goes through the normal ingest path (priced, stored once per
event id, debited from the ledger exactly once) and the hold is closed with the actual cost.
With `apply=False` the debit is left to the usage applier, as for deferred ingest: the cost
waits in `usage_pending`, which every balance read and authorize count, so closing the hold
and queueing its cost in one transaction leave no moment where the money is counted by neither.

Several settles can run in one transaction (`settle_many`, used by the settle workflow's
per-process batching): the holds are locked in id order, their events ingested as one batch, and each
request gets its own result or error; one bad request never fails the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import OPERATOR, Principal
from creditgate.errors import Conflict, CreditgateError, ValidationError
from creditgate.limits import service as limits
from creditgate.metering.catalog import PriceCatalog
from creditgate.metering.events import EVENT_FIELDS
from creditgate.metering.models import usage_events
from creditgate.metering.service import ingest

SETTLE_FIELDS = EVENT_FIELDS  # settle takes the actual usage in the shape of a usage event


@dataclass(frozen=True)
class SettleRequest:
    hold_id: str
    body: Any
    principal: Principal


@dataclass(frozen=True)
class Settlement:
    hold: limits.Hold
    replayed: bool


@dataclass(frozen=True, slots=True)
class _StoredEvent:
    cost: int
    hold_id: str | None


def _check_body(raw: Any) -> None:
    if not isinstance(raw, dict):
        raise ValidationError("request body must be a JSON object", field="body")
    for key in raw:
        if key not in SETTLE_FIELDS:
            raise ValidationError(f"{key} is not a known field", field=str(key))


def _event(hold: limits.Hold, raw: dict[str, Any]) -> dict[str, Any]:
    """The usage event: `id` defaults to the hold's request_id; account_id, model and provider to
    the hold's; with cost_usd the token counts default to 0."""
    if raw.get("account_id") not in (None, hold.account_id):
        raise ValidationError("account_id does not match the hold's account", field="account_id")
    event = {"id": hold.request_id, "model": hold.model, **raw, "account_id": hold.account_id}
    if event.get("provider") is None and hold.provider is not None and "model" not in raw:
        event["provider"] = hold.provider
    if event.get("cost_usd") is not None:
        event.setdefault("input_tokens", 0)
        event.setdefault("output_tokens", 0)
    return event


async def settle(
    conn: AsyncConnection,
    hold_id: str,
    raw: Any,
    principal: Principal,
    catalog: PriceCatalog,
    now: datetime,
    *,
    apply: bool = True,
) -> Settlement:
    """Settle one hold. Settling again with the same event id replays; another id is a Conflict."""
    (result,) = await settle_many(conn, [SettleRequest(hold_id, raw, principal)], catalog, now, apply=apply)
    if isinstance(result, CreditgateError):
        raise result
    return result


async def settle_many(
    conn: AsyncConnection,
    requests: list[SettleRequest],
    catalog: PriceCatalog,
    now: datetime,
    *,
    apply: bool = True,
) -> list[Settlement | CreditgateError]:
    """Settle several holds in the caller's transaction; per request a Settlement or an error."""
    results: list[Settlement | CreditgateError | None] = [None] * len(requests)
    for i, req in enumerate(requests):
        try:
            _check_body(req.body)
        except ValidationError as exc:
            results[i] = exc
    todo = [i for i, r in enumerate(results) if r is None]
    locked = await limits.lock_holds_for_settle(
        conn, [requests[i].hold_id for i in todo], [requests[i].principal for i in todo]
    )
    leaders: dict[str, int] = {}  # hold id -> the request that settles it in this batch
    followers: list[tuple[int, str, str]] = []  # (request, hold id, event id)
    pending: list[tuple[int, limits.Hold, dict[str, Any]]] = []
    for i, got in zip(todo, locked, strict=True):
        if isinstance(got, CreditgateError):
            results[i] = got
            continue
        try:
            event = _event(got, requests[i].body)
        except ValidationError as exc:
            results[i] = exc
            continue
        if got.status == "settled":
            results[i] = _replay(got, str(event["id"]))
        elif got.id in leaders:
            followers.append((i, got.id, str(event["id"])))
        else:
            leaders[got.id] = i
            pending.append((i, got, event))
    if pending:
        await _settle_pending(conn, pending, results, catalog, now, apply=apply)
    for i, hold_id, event_id in followers:  # the same hold twice in one batch
        first = results[leaders[hold_id]]
        results[i] = _replay(first.hold, event_id) if isinstance(first, Settlement) else first
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def _replay(hold: limits.Hold, event_id: str) -> Settlement | CreditgateError:
    if event_id != hold.event_id:
        return Conflict(f"the hold was already settled by event {hold.event_id!r}", field="id")
    return Settlement(hold, replayed=True)


async def _settle_pending(
    conn: AsyncConnection,
    pending: list[tuple[int, limits.Hold, dict[str, Any]]],
    results: list[Settlement | CreditgateError | None],
    catalog: PriceCatalog,
    now: datetime,
    *,
    apply: bool,
) -> None:
    # every caller was checked against its hold, and each event's account is the hold's; an
    # event stored now is stored with its hold, one stored before is linked to it here
    holds: dict[tuple[str, str], str] = {}
    for _, hold, event in pending:
        holds.setdefault((hold.account_id, str(event["id"])), hold.id)  # the first claims it
    events = [event for _, _, event in pending]
    ingested = await ingest(conn, events, OPERATOR, catalog, now, holds=holds, apply=apply)
    fresh = ingested.held_costs
    rejected = {r.index: r for r in ingested.rejected}
    keys = [
        (hold.account_id, str(event["id"])) for k, (_, hold, event) in enumerate(pending) if k not in rejected
    ]
    stored = await _stored_events(conn, [key for key in keys if key not in fresh])
    claimed: dict[tuple[str, str], str] = {key: holds[key] for key in fresh}
    closes: list[tuple[limits.Hold, int, str]] = []
    owners: list[int] = []
    links: list[dict[str, str]] = []
    for k, (i, hold, event) in enumerate(pending):
        if k in rejected:
            results[i] = ValidationError(rejected[k].error, field=rejected[k].field)
            continue
        key = (hold.account_id, str(event["id"]))
        row = stored.get(key)
        owner = claimed.get(key) or (row.hold_id if row is not None else None)
        if (key not in fresh and row is None) or owner not in (None, hold.id):
            results[i] = Conflict(f"event {key[1]!r} already settled another hold", field="id")
            continue
        if key in fresh:
            cost = fresh[key]
        else:
            assert row is not None
            cost = row.cost
            if owner is None:
                links.append({"a": hold.account_id, "e": key[1], "h": hold.id})
        claimed[key] = hold.id
        closes.append((hold, cost, key[1]))
        owners.append(i)
    if not closes:
        return
    if links:
        await conn.execute(_LINK_TO_HOLD, links)
    for i, hold in zip(owners, await limits.finish_settle_many(conn, closes, now), strict=True):
        results[i] = Settlement(hold, replayed=False)


_LINK_TO_HOLD = (
    usage_events.update()
    .where(
        usage_events.c.account_id == bindparam("a"),
        usage_events.c.event_id == bindparam("e"),
        usage_events.c.hold_id.is_(None),
    )
    .values(hold_id=bindparam("h"))
)

# One cached statement for any number of keys (an expanding row-value IN): built per call as
# an OR of per-account clauses it was a third of a settle group's CPU (py-spy), none of it cached.
_c = usage_events.c
_STORED_EVENTS = select(_c.account_id, _c.event_id, _c.cost, _c.hold_id).where(
    tuple_(_c.account_id, _c.event_id).in_(bindparam("keys", expanding=True))
)


async def _stored_events(
    conn: AsyncConnection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], _StoredEvent]:
    """Cost and hold of stored events, by (account_id, event_id)."""
    if not keys:
        return {}
    rows = await conn.execute(_STORED_EVENTS, {"keys": keys})
    return {(r.account_id, r.event_id): _StoredEvent(int(r.cost), r.hold_id) for r in rows}
