"""Validation of one usage event, by hand: fast, and every message names its field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from creditgate.clock import from_ms
from creditgate.errors import ValidationError
from creditgate.ids import is_valid_account_id
from creditgate.jsonvalues import contains_nul
from creditgate.money import parse_usd

MAX_TOKENS = 10**12
MAX_EVENT_COST = 10**15  # $1,000,000 for one call: far above any real one, and 1000 fit a BIGINT
MAX_METADATA_BYTES = 4096
MAX_API_KEY_ID = 200  # metadata.api_key_id: the gateway's key, a dimension of the usage rollups
MIN_TIMESTAMP_MS = 946_684_800_000  # 2000-01-01
MAX_TIMESTAMP_MS = 4_102_444_800_000  # 2100-01-01
EVENT_FIELDS = frozenset(
    {
        "id",
        "account_id",
        "model",
        "provider",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "cost_usd",
        "timestamp",
        "metadata",
    }
)


@dataclass(slots=True)
class UsageEvent:
    """A validated usage report. `cost_override` is in ledger units when the gateway sent one."""

    id: str
    account_id: str
    model: str
    provider: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_override: int | None
    occurred_at: datetime
    metadata: dict[str, Any] | None
    metadata_json: str | None = None  # `metadata` as validated and encoded, stored as is
    api_key_id: str | None = None  # metadata.api_key_id, kept in its own column


def _string(raw: dict[str, Any], field: str, max_len: int, required: bool = True) -> str | None:
    value = raw.get(field)
    if type(value) is str and 0 < len(value) <= max_len and "\x00" not in value:
        return value  # the common case, checked in one go
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{field} must be a non-empty string", field=field)
    if len(value) > max_len:
        raise ValidationError(f"{field} must be at most {max_len} characters", field=field)
    if "\x00" in value:
        raise ValidationError(f"{field} must not contain the NUL character", field=field)
    return value


def _count(raw: dict[str, Any], field: str, required: bool = True) -> int:
    value = raw.get(field)
    if type(value) is int and 0 <= value <= MAX_TOKENS:
        return value  # the common case (bool is not `int` by type identity)
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field} must be an integer", field=field)
    if value < 0 or value > MAX_TOKENS:
        raise ValidationError(f"{field} must be between 0 and {MAX_TOKENS}", field=field)
    return value


def parse_event(raw: Any, now: datetime) -> UsageEvent:
    """Turn one raw JSON event into a UsageEvent or raise ValidationError."""
    if not isinstance(raw, dict):
        raise ValidationError("event must be a JSON object", field="event")
    if not EVENT_FIELDS.issuperset(raw):
        key = next(k for k in raw if k not in EVENT_FIELDS)
        raise ValidationError(f"{key} is not a known field", field=str(key))
    event_id = _string(raw, "id", 200)
    account_id = raw.get("account_id")
    if not isinstance(account_id, str) or not is_valid_account_id(account_id):
        raise ValidationError("account_id must be a valid account id", field="account_id")
    model = _string(raw, "model", 200)
    provider = _string(raw, "provider", 64, required=False)
    input_tokens = _count(raw, "input_tokens")
    output_tokens = _count(raw, "output_tokens")
    cached_tokens = _count(raw, "cached_tokens", required=False)
    if cached_tokens > input_tokens:
        raise ValidationError(
            "cached_tokens is the cached part of input_tokens and cannot exceed it",
            field="cached_tokens",
        )
    cost_override = None
    if "cost_usd" in raw and raw["cost_usd"] is not None:
        cost = raw["cost_usd"]
        if not isinstance(cost, str):
            raise ValidationError('cost_usd must be a decimal string such as "0.0012"', field="cost_usd")
        try:
            cost_override = parse_usd(cost, strip=False)
        except ValueError as exc:
            raise ValidationError(f"cost_usd {exc}", field="cost_usd") from exc
        if not 0 <= cost_override <= MAX_EVENT_COST:
            raise ValidationError("cost_usd must be between 0 and 1000000", field="cost_usd")
    occurred_at = now
    if raw.get("timestamp") is not None:
        ts = raw["timestamp"]
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise ValidationError("timestamp must be an integer of Unix milliseconds", field="timestamp")
        if not MIN_TIMESTAMP_MS <= ts <= MAX_TIMESTAMP_MS:
            raise ValidationError(
                "timestamp must be Unix milliseconds between 2000 and 2100", field="timestamp"
            )
        occurred_at = from_ms(ts)
    metadata = raw.get("metadata")
    encoded = None
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise ValidationError("metadata must be a JSON object", field="metadata")
        try:
            encoded = orjson.dumps(metadata)
        except orjson.JSONEncodeError as exc:
            raise ValidationError("metadata is nested too deeply", field="metadata") from exc
        if len(encoded) > MAX_METADATA_BYTES:
            raise ValidationError(f"metadata must be at most {MAX_METADATA_BYTES} bytes", field="metadata")
        if b"\\u0000" in encoded and contains_nul(metadata):
            raise ValidationError("metadata must not contain the NUL character", field="metadata")
        api_key_id = _api_key_id(metadata.get("api_key_id"))
    else:
        api_key_id = None
    assert event_id is not None and model is not None
    return UsageEvent(
        id=event_id,
        account_id=account_id,
        model=model,
        provider=provider,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        cost_override=cost_override,
        occurred_at=occurred_at,
        metadata=metadata,
        metadata_json=None if encoded is None else encoded.decode(),
        api_key_id=api_key_id,
    )


def _api_key_id(value: Any) -> str | None:
    """The gateway key that made the call: a string (an integer is read as its digits); an
    empty string or null is "no key"."""
    if type(value) is int:
        value = str(value)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError("metadata.api_key_id must be a string", field="metadata.api_key_id")
    if len(value) > MAX_API_KEY_ID:
        raise ValidationError(
            f"metadata.api_key_id must be at most {MAX_API_KEY_ID} characters", field="metadata.api_key_id"
        )
    return value
