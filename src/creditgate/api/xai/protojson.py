"""protojson for the xAI wire: typed messages out in Go protojson's exact shape, lenient in.

A message is a dataclass whose class attribute `FIELDS` lists its proto fields in declaration
order. Output (contract section 2.3): int64 as strings, int32 and doubles as numbers, enums by
name, timestamps as RFC 3339 `Z` with 0, 3 or 6 fraction digits, unset sub-messages as null,
empty lists as [], proto3 `optional` fields left out when unset (None), and of a oneof only
the member that is set. Input (section 2.4): camelCase or snake_case keys, int64 as a string or
a number, enums as a name or a number, null as unset, unknown fields ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, TypeVar

from creditgate.errors import ValidationError

INT64, INT32, BOOL, DOUBLE, STRING, ENUM, MESSAGE, TIMESTAMP = (
    "int64",
    "int32",
    "bool",
    "double",
    "string",
    "enum",
    "message",
    "timestamp",
)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_INTEGER = re.compile(r"-?[0-9]+")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})"
)


@dataclass(frozen=True)
class F:
    """One proto field: its snake_case name, kind, and how it is emitted."""

    name: str
    kind: str
    type: Any = None  # the message class or IntEnum of MESSAGE / ENUM fields
    repeated: bool = False
    optional: bool = False  # proto3 `optional`: left out when None
    oneof: str | None = None  # the oneof group: left out when None
    aliases: tuple[str, ...] = ()  # extra input names (enum spellings are on the enum)

    @property
    def json_name(self) -> str:
        head, *rest = self.name.split("_")
        return head + "".join(part[:1].upper() + part[1:] for part in rest)


M = TypeVar("M")


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with `Z`; the fraction has 0, 3 or 6 digits, as Go prints it."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    micros = moment.microsecond
    if micros == 0:
        return text + "Z"
    if micros % 1000 == 0:
        return f"{text}.{micros // 1000:03d}Z"
    return f"{text}.{micros:06d}Z"


def _scalar(field: F, value: Any) -> Any:
    if field.kind == INT64:
        return str(int(value))
    if field.kind == INT32:
        return int(value)
    if field.kind == DOUBLE:  # Go prints integral doubles without a fraction: 0, not 0.0
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 1e21 else number
    if field.kind == ENUM:
        return enum_name(field.type(value))
    if field.kind == TIMESTAMP:
        return timestamp(value)
    if field.kind == MESSAGE:
        return encode(value)
    return value


_WIRE_NAMES: dict[tuple[type, str], str] = {}  # keyed by type: IntEnum members equal their numbers


def rename(member: IntEnum, wire_name: str) -> None:
    """Emit `member` as `wire_name`; both names are read."""
    _WIRE_NAMES[(type(member), member.name)] = wire_name


def enum_name(value: IntEnum) -> str:
    """The wire name of an enum value."""
    return _WIRE_NAMES.get((type(value), value.name), value.name)


def encode(message: Any) -> dict[str, Any]:
    """The message as a JSON-ready dict, keys in declaration order."""
    out: dict[str, Any] = {}
    for field in message.FIELDS:
        value = getattr(message, field.name)
        if field.repeated:
            out[field.json_name] = [_scalar(field, item) for item in value or ()]
        elif value is None:
            if field.optional or field.oneof:
                continue
            out[field.json_name] = None if field.kind in (MESSAGE, TIMESTAMP) else _default(field)
        else:
            out[field.json_name] = _scalar(field, value)
    return out


def _default(field: F) -> Any:
    return {INT64: "0", INT32: 0, BOOL: False, DOUBLE: 0, STRING: "", ENUM: None}.get(field.kind)


def _fail(path: str, what: str) -> ValidationError:
    return ValidationError(f"{path or 'body'} {what}", field=path or "body")


def _int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise _fail(path, "must be an integer")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and len(value) <= 32 and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int):
        raise _fail(path, "must be an integer (a number or a decimal string)")
    if not low <= value <= high:
        raise _fail(path, "is out of range")
    return value


def _enum(enum: Any, value: Any, path: str) -> IntEnum:
    if isinstance(value, str):
        for member in enum:
            if value in (member.name, enum_name(member)):
                found: IntEnum = member
                return found
        raise _fail(path, f"must be one of {', '.join(enum_name(m) for m in enum)}")
    number = _int(value, path, INT32_MIN, INT32_MAX)
    try:
        numbered: IntEnum = enum(number)
    except ValueError:
        raise _fail(path, f"has no value {number}") from None
    return numbered


def parse_timestamp(value: Any, path: str) -> datetime:
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _fail(path, "must be an RFC 3339 timestamp such as 2025-01-01T00:00:00Z")
    try:
        return datetime.fromisoformat(_iso(value)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _fail(path, "is not a valid date and time") from None


def _iso(value: str) -> str:
    """Python's fromisoformat takes at most 6 fraction digits and no lowercase `z`."""
    value = value.replace("z", "Z").replace("t", "T").replace("Z", "+00:00")
    head, dot, rest = value.partition(".")
    if not dot:
        return value
    digits = re.match(r"\d+", rest)
    assert digits is not None
    return f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"


def _value(field: F, value: Any, path: str) -> Any:
    kind = field.kind
    if kind == INT64:
        return _int(value, path, INT64_MIN, INT64_MAX)
    if kind == INT32:
        return _int(value, path, INT32_MIN, INT32_MAX)
    if kind == BOOL:
        if not isinstance(value, bool):
            raise _fail(path, "must be true or false")
        return value
    if kind == DOUBLE:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, "must be a number")
        return float(value)
    if kind == STRING:
        if not isinstance(value, str):
            raise _fail(path, "must be a string")
        return value
    if kind == ENUM:
        return _enum(field.type, value, path)
    if kind == TIMESTAMP:
        return parse_timestamp(value, path)
    return decode(field.type, value, path)


def decode(cls: type[M], data: Any, path: str = "") -> M:
    """Build `cls` from parsed JSON, leniently. ValidationError names the field at fault."""
    if not isinstance(data, dict):
        raise _fail(path, "must be a JSON object")
    values: dict[str, Any] = {}
    oneofs: dict[str, str] = {}
    fields: tuple[F, ...] = cls.FIELDS  # type: ignore[attr-defined]
    for field in fields:
        present = [k for k in dict.fromkeys((field.json_name, field.name, *field.aliases)) if k in data]
        where = f"{path}.{field.json_name}" if path else field.json_name
        if len(present) > 1:
            raise _fail(where, f"is given twice ({' and '.join(present)})")
        raw = data[present[0]] if present else None
        if raw is None:
            continue
        if field.oneof:
            if field.oneof in oneofs:
                raise _fail(where, f"cannot be set together with {oneofs[field.oneof]}")
            oneofs[field.oneof] = where
        if field.repeated:
            if not isinstance(raw, list):
                raise _fail(where, "must be a list")
            values[field.name] = [_value(field, item, f"{where}[{i}]") for i, item in enumerate(raw)]
        else:
            values[field.name] = _value(field, raw, where)
    return cls(**values)
