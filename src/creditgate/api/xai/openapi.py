"""How the xAI routes appear in /openapi.json: request bodies (described loosely, as protojson
reads them), success bodies typed from their messages as protojson writes them (the contract is
xai-billing.md), and google.rpc.Status errors."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from creditgate.api.schemas.common import TOKEN_SECURITY
from creditgate.api.xai.protojson import (
    BOOL,
    DOUBLE,
    ENUM,
    INT32,
    INT64,
    MESSAGE,
    STRING,
    TIMESTAMP,
    F,
    enum_name,
)

CONTRACT = "protojson, as in the xAI Management API (contract: xai-billing.md)"
_ERRORS = {
    400: "Malformed input or URL, or a team id that is not a UUID (INVALID_ARGUMENT)",
    401: "No management key, or an unknown one (UNAUTHENTICATED)",
    403: "The key's scope does not allow this (PERMISSION_DENIED)",
    402: "The card was declined; nothing was credited (FAILED_PRECONDITION)",
    404: "No such team, or a team of another key (NOT_FOUND)",
    409: "The Idempotency-Key was used with a different request (ABORTED)",
    413: "The body is too large",
    415: "The body is not JSON",
    503: "The card processor could not be reached; nothing was charged yet (UNAVAILABLE)",
}
_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
_ENUM = {"anyOf": [_STRING, {"type": "integer"}]}
BILLING_INFO_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "billingInfo": {
            "type": "object",
            "properties": {
                "name": _STRING,
                "address": {
                    "type": "object",
                    "properties": {
                        k: _STRING for k in ("line1", "line2", "city", "country", "postalCode", "state")
                    },
                },
                "email": _STRING,
                "taxIdType": _STRING,
                "taxNumber": _STRING,
            },
        }
    },
}
SET_DEFAULT_BODY: dict[str, Any] = {"type": "object", "properties": {"paymentMethodId": _STRING}}
_INT64 = {"anyOf": [_STRING, {"type": "integer"}]}
TOP_UP_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"amount": {"type": "object", "properties": {"val": _INT64}}},
}
USAGE_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "analyticsRequest": {
            "type": "object",
            "properties": {
                "timeRange": {
                    "type": "object",
                    "properties": {"startTime": _STRING, "endTime": _STRING, "timezone": _STRING},
                },
                "timeUnit": _ENUM,
                "values": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": _STRING, "aggregation": _ENUM}},
                },
                "groupBy": _STRINGS,
                "filters": _STRINGS,
            },
        }
    },
}


_KINDS: dict[str, dict[str, Any]] = {
    INT64: {"type": "string", "pattern": "^-?[0-9]+$"},
    INT32: {"type": "integer"},
    BOOL: {"type": "boolean"},
    DOUBLE: {"type": "number"},
    STRING: _STRING,
    TIMESTAMP: {"type": "string", "format": "date-time"},
}


def _field_schema(field: F) -> dict[str, Any]:
    if field.kind == MESSAGE:
        item = message_schema(field.type)
    elif field.kind == ENUM:
        item = {"type": "string", "enum": [enum_name(member) for member in field.type]}
    else:
        item = _KINDS[field.kind]
    if field.repeated:
        return {"type": "array", "items": item}
    if field.kind in (MESSAGE, TIMESTAMP) and not (field.optional or field.oneof):
        return {"anyOf": [item, {"type": "null"}]}  # unset sub-messages are null
    return item


def message_schema(cls: type[Any]) -> dict[str, Any]:
    """The JSON Schema of a message as protojson writes it: every field present except unset
    proto3 `optional` fields and oneof members, no other keys."""
    fields: tuple[F, ...] = cls.FIELDS
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {field.json_name: _field_schema(field) for field in fields},
        "additionalProperties": False,
    }
    required = [field.json_name for field in fields if not (field.optional or field.oneof)]
    if required:
        schema["required"] = required
    return schema


class RpcStatus(BaseModel):
    """google.rpc.Status: a gRPC code, a message, and no details."""

    code: int
    message: str
    details: list[dict[str, Any]]


def _success(response: type[Any] | dict[str, Any] | None) -> dict[str, Any]:
    if response is None:
        return _OBJECT
    return response if isinstance(response, dict) else message_schema(response)


def doc(
    summary: str,
    *,
    team: bool = True,
    body: dict[str, Any] | None = None,
    errors: tuple[int, ...] = (),
    response: type[Any] | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Route decorator arguments: the success body (a message class, a schema, or any object),
    the errors and the security requirement."""
    codes = [400, 401, 403, 404] if team else [400, 401, 403]  # 400: a NUL in the URL
    if body is not None:
        codes += [413, 415]
    codes = sorted({*codes, *errors})
    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": CONTRACT, "content": {"application/json": {"schema": _success(response)}}}
    }
    for code in codes:
        responses[code] = {"model": RpcStatus, "description": _ERRORS[code]}
    extra: dict[str, Any] = {"security": TOKEN_SECURITY}
    if body is not None:
        extra["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
    return {"summary": summary, "responses": responses, "openapi_extra": extra}
