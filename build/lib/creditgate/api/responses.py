"""Fast JSON responses (orjson) and the request-body reader with clear 4xx answers."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from creditgate.errors import PayloadTooLarge, UnsupportedMediaType, ValidationError

MAX_BODY_BYTES = 2 * 1024 * 1024
_NUL_ESCAPE = b"\\u0000"


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


# Read as JSON: JSON types, no type, and the defaults of `curl -d` and of many HTTP clients
# (the body must still parse as JSON). Anything else (XML, multipart, binary) is a 415.
_LENIENT_TYPES = ("", "application/json", "text/plain", "application/x-www-form-urlencoded")


def _is_json_type(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime in _LENIENT_TYPES or mime.endswith("+json")


async def read_body(request: Request) -> bytes:
    """The raw body, refusing more than MAX_BODY_BYTES before reading it all (413)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes", field="body")
    if hasattr(request, "_body"):
        body: bytes = request._body
        return body
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes", field="body")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # so request.body() (e.g. the Idempotency-Key hash) sees it again
    return body


def contains_nul(value: Any) -> bool:
    """Whether any string (key or value) inside a parsed JSON document holds U+0000, which
    PostgreSQL cannot store in text or jsonb."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


async def read_json(request: Request, *, allow_nul: bool = False) -> Any:
    """The parsed JSON body, or a 4xx for a non-JSON content type (415), an oversized body
    (413), or an empty or malformed one (400). Strings holding U+0000 are refused unless
    `allow_nul` (the caller then checks them itself)."""
    if not _is_json_type(request.headers.get("content-type", "")):
        raise UnsupportedMediaType("Content-Type must be application/json", field="body")
    body = await read_body(request)
    if not body.strip():
        raise ValidationError("request body must be JSON", field="body")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"malformed JSON: {exc}", field="body") from exc
    if not allow_nul and _NUL_ESCAPE in body and contains_nul(data):
        raise ValidationError("strings must not contain the NUL character (\\u0000)", field="body")
    return data


async def read_object(
    request: Request, allowed: set[str] | None = None, *, allow_nul: bool = False
) -> dict[str, Any]:
    """A JSON object body; with `allowed`, any other key is a ValidationError naming it."""
    data = await read_json(request, allow_nul=allow_nul)
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object", field="body")
    if allowed is not None:
        for key in data:
            if key not in allowed:
                raise ValidationError(f"{key} is not a known field", field=str(key))
    return data
