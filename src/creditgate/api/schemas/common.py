"""The error envelopes, the security schemes and `operation()`, which documents one route.

Route bodies are still parsed by `api.responses.read_object` (it words every error message);
the models here describe the same rules for /openapi.json, so a schema-driven client and the
service agree on what is valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model

REF = "#/components/schemas/{model}"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An account token (scope read, write or gateway) or the operator token.",
    },
    "authEmail": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Auth-Email",
        "description": "Cloudflare-style pair: any email, with the token in X-Auth-Key.",
    },
    "authKey": {"type": "apiKey", "in": "header", "name": "X-Auth-Key", "description": "The token."},
}
TOKEN_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"authEmail": [], "authKey": []}]

Wire = Literal["plain", "cloudflare"]


class Request(BaseModel):
    """A request body: unknown keys are refused (400 naming the key)."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    type: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """The admin, gateway and webhook error shape."""

    error: ErrorDetail


class CloudflarePointer(BaseModel):
    pointer: str


class CloudflareMessage(BaseModel):
    code: int
    message: str
    source: CloudflarePointer | None = None


class CloudflareError(BaseModel):
    """Cloudflare's error envelope."""

    errors: list[CloudflareMessage]
    messages: list[CloudflareMessage]
    result: None
    success: Literal[False]


class Empty(BaseModel):
    """An empty JSON object."""

    model_config = ConfigDict(extra="forbid")


def cloudflare_envelope(name: str, result: type[BaseModel]) -> type[BaseModel]:
    """Cloudflare's success envelope around `result`."""
    return create_model(
        name,
        errors=(list[CloudflareMessage], ...),
        messages=(list[CloudflareMessage], ...),
        result=(result, ...),
        success=(Literal[True], ...),
    )


# Every model named in a requestBody, added to components.schemas by the app's openapi().
REQUEST_MODELS: dict[str, type[BaseModel]] = {}

_DESCRIPTIONS = {
    400: "Malformed or invalid input (the error names the field)",
    401: "Missing or invalid credentials",
    402: "The card was declined or the payment failed",
    403: "The credentials may not do this",
    404: "Not found",
    409: "Conflicts with stored state (e.g. an Idempotency-Key reused with another body)",
    413: "The request body exceeds 2 MiB",
    415: "The body is not JSON",
    422: "Every usage event was rejected",
    500: "Internal error",
    503: "A dependency (the card processor) could not be reached; nothing was decided",
}


def idempotency_header() -> dict[str, Any]:
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Replays the stored answer for the same request; another body with the key is a 409.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    }


def operation(
    *,
    ok: type[BaseModel] | None,
    status: int = 200,
    extra_ok: Mapping[int, type[BaseModel]] | None = None,
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    errors: Iterable[int] = (),
    auth: bool = True,
    wire: Wire = "plain",
    parameters: Iterable[dict[str, Any]] = (),
    media_type: str = "application/json",
    summary: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator: the success model and status, every failure
    with its envelope, the request body and the security requirement."""
    error_model = CloudflareError if wire == "cloudflare" else ErrorBody
    codes = {400, *errors}
    if auth:
        codes |= {403} | ({400} if wire == "cloudflare" else {401})
    if body is not None:
        codes |= {413, 415}
    responses: dict[int | str, dict[str, Any]] = {}
    if ok is not None:
        responses[status] = {"model": ok, "description": "Success"}
    else:
        responses[status] = {"description": "Success", "content": {media_type: {}}}
    for code, model in (extra_ok or {}).items():
        responses[code] = {"model": model, "description": "Success"}
    for code in sorted(codes):
        responses[code] = {"model": error_model, "description": _DESCRIPTIONS[code]}
    extra: dict[str, Any] = {}
    if auth:
        extra["security"] = TOKEN_SECURITY
    if body is not None:
        REQUEST_MODELS[body.__name__] = body
        extra["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=body.__name__)}}},
        }
    if parameters:
        extra["parameters"] = list(parameters)
    kwargs: dict[str, Any] = {"status_code": status, "responses": responses, "openapi_extra": extra}
    if summary:
        kwargs["summary"] = summary
    return kwargs


def components(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the request models and security schemes to a generated OpenAPI document, and drop
    FastAPI's unused 422 `HTTPValidationError` (bad parameters are 400s in our own shape)."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name, model in REQUEST_MODELS.items():
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    spec["components"]["securitySchemes"] = SECURITY_SCHEMES
    for path in spec.get("paths", {}).values():
        for op in path.values():
            answer = op.get("responses", {}).get("422")
            if answer and "HTTPValidationError" in str(answer):
                del op["responses"]["422"]
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return spec
