"""Fast JSON responses (orjson) and the request-body reader with clear 400s."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from creditgate.errors import ValidationError

MAX_BODY_BYTES = 2 * 1024 * 1024


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def read_json(request: Request) -> Any:
    """The parsed JSON body, or ValidationError for empty, oversized or malformed bodies."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ValidationError(f"request body exceeds {MAX_BODY_BYTES} bytes", field="body")
    if not body:
        raise ValidationError("request body must be JSON", field="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"malformed JSON: {exc}", field="body") from exc


async def read_object(request: Request, allowed: set[str] | None = None) -> dict[str, Any]:
    """A JSON object body; with `allowed`, any other key is a ValidationError naming it."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object", field="body")
    if allowed is not None:
        for key in data:
            if key not in allowed:
                raise ValidationError(f"{key} is not a known field", field=str(key))
    return data
