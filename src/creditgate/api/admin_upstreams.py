"""Operator endpoints for the metering proxy's upstreams: POST/GET /admin/v1/upstreams,
GET/DELETE /admin/v1/upstreams/{id} (docs/proxy.md). The API key is write-only."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from creditgate.api.admin import operator
from creditgate.api.responses import JSON, read_object
from creditgate.api.schemas.common import Request as RequestBody
from creditgate.api.schemas.common import operation
from creditgate.api.state import services
from creditgate.workflows import upstreams

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(operator)])

Printable = r"^[\x21-\x7e]+$"
Rate = Annotated[
    str, Field(pattern=r"^[0-9]{1,6}(\.[0-9]{1,9})?$", description="USD per million tokens, e.g. 2.50")
]


class UpstreamModelIn(RequestBody):
    model: Annotated[str, Field(min_length=1, max_length=200, pattern=Printable)]
    alias: Annotated[str, Field(min_length=1, max_length=200, pattern=Printable)] | None = Field(
        default=None, description="The name customers call the model by (default: its own name)"
    )
    input_per_mtok_usd: Rate | None = Field(default=None, description="Sell price; with output_per_mtok_usd")
    output_per_mtok_usd: Rate | None = None
    cached_input_per_mtok_usd: Rate | None = None
    max_output_tokens: Annotated[int, Field(ge=1, le=upstreams.MAX_OUTPUT_TOKENS)] | None = Field(
        default=None, description="The model's output maximum, held when a request sets none"
    )


class UpstreamCreate(RequestBody):
    provider: Literal["openai", "anthropic"]
    base_url: Annotated[
        str,
        Field(
            max_length=500,
            pattern=r"^https?://[a-z0-9]([a-z0-9.-]{0,60}[a-z0-9])?(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]+){0,4}$",
            description="OpenAI: including /v1; Anthropic: without it (as each SDK takes it)",
        ),
    ]
    api_key: Annotated[str, Field(min_length=1, max_length=2000, pattern=Printable)] = Field(
        description="Stored encrypted; never shown again"
    )
    models: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200, pattern=Printable)] | UpstreamModelIn],
        Field(min_length=1, max_length=upstreams.MAX_MODELS),
    ]
    markup_percent: (
        Annotated[str, Field(pattern=r"^[0-9]{1,3}(\.[0-9]{1,4})?$")]
        | Annotated[int, Field(ge=0, le=upstreams.MAX_MARKUP_PERCENT)]
    ) = Field(default="0", description="Added to the catalog price (not to per-model prices)")
    connect_timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 10
    read_timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 600


class UpstreamModel(BaseModel):
    name: str
    model: str
    alias: str | None
    input_per_mtok_usd: str | None
    output_per_mtok_usd: str | None
    cached_input_per_mtok_usd: str | None
    max_output_tokens: int | None


class Upstream(BaseModel):
    id: str
    provider: str
    base_url: str
    markup_percent: str
    connect_timeout_seconds: int
    read_timeout_seconds: int
    created_at: str
    models: list[UpstreamModel]


class UpstreamList(BaseModel):
    upstreams: list[Upstream]


class UpstreamDeleted(BaseModel):
    deleted: str


@router.post("/upstreams", **operation(ok=Upstream, status=201, body=UpstreamCreate, errors=[409]))
async def add_upstream(request: Request) -> Response:
    """Add an upstream provider (the key is stored encrypted and never returned)."""
    body = await read_object(request)
    return JSON(await upstreams.add_upstream(services(request), body), status_code=201)


@router.get("/upstreams", **operation(ok=UpstreamList))
async def list_upstreams(request: Request) -> Response:
    return JSON({"upstreams": await upstreams.list_upstreams(services(request))})


@router.get("/upstreams/{upstream_id}", **operation(ok=Upstream, errors=[404]))
async def get_upstream(request: Request, upstream_id: str) -> Response:
    return JSON(await upstreams.get_upstream(services(request), upstream_id))


@router.delete("/upstreams/{upstream_id}", **operation(ok=UpstreamDeleted, errors=[404]))
async def remove_upstream(request: Request, upstream_id: str) -> Response:
    """Remove an upstream and its models (other processes stop using it within 5 s)."""
    await upstreams.remove_upstream(services(request), upstream_id)
    return JSON({"deleted": upstream_id})
