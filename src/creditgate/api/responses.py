"""Fast JSON responses (orjson) and the request-body reader with clear 4xx answers."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from creditgate.errors import PayloadTooLarge, UnsupportedMediaType, ValidationError
from creditgate.jsonvalues import contains_nul

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
    """The raw body, streamed: more than MAX_BODY_BYTES is a 413 once that much has arrived,
    so a huge body is never held in memory. Every route reads its body through this."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes", field="body")
    if hasattr(request, "_body"):  # read before (by request.body(), which has no limit)
        body: bytes = request._body
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes", field="body")
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


_ESCAPED_COLON = re.compile(rb"\\u003[aA]")
_NO_REPEAT = object()


def repeated_key(body: bytes, data: Any) -> str | None:
    """A key that some object of `body` (which orjson parsed to `data`) holds twice, or None.

    orjson keeps the last of repeated keys silently; a proxy that keeps the first would read
    another request. The check is exact and costs one orjson.dumps: outside strings, a colon
    only ever ends a key, and every colon inside a string survives parsing (a `\\u003a` escape
    aside), so the body has as many colons as the re-serialised document exactly when no key
    was dropped. Only when that count differs, or for an escaped colon or a document orjson
    will not re-serialise (nested over 254 deep), does the standard library parse the body
    again with a hook that names the repeated key."""
    if not isinstance(data, dict | list):
        return None
    colons = body.count(b":")
    if colons == 0:
        return None
    if b"\\" not in body or _ESCAPED_COLON.search(body) is None:  # memchr first: most have no escape
        try:
            if orjson.dumps(data).count(b":") == colons:
                return None
        except orjson.JSONEncodeError:
            pass
    return _first_repeated_key(body)


def _first_repeated_key(body: bytes) -> str | None:
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> object:
        if not found:
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    found.append(key)
                    break
                seen.add(key)
        return _NO_REPEAT  # the document itself is not needed

    try:
        # numbers are not needed either (and so meet no int digit limit)
        json.loads(body, object_pairs_hook=pairs, parse_int=_ignored, parse_float=_ignored)
    except RecursionError as exc:
        raise ValidationError("malformed JSON: nested too deeply", field="body") from exc
    except ValueError as exc:  # orjson read it, so this is not expected: refuse rather than guess
        raise ValidationError(f"malformed JSON: {exc}", field="body") from exc
    return found[0] if found else None


def _ignored(_text: str) -> int:
    return 0


def _shown(key: str) -> str:
    return orjson.dumps(key if len(key) <= 64 else key[:64] + "...").decode()


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
    repeated = repeated_key(body, data)
    if repeated is not None:
        raise ValidationError(
            f"malformed JSON: the key {_shown(repeated)} appears twice in one object", field="body"
        )
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
