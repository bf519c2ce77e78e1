"""Schemas of the sandbox card processor's 3-D Secure step and the health check."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from creditgate.api.schemas.common import Request


class Authenticate(Request):
    client_secret: Annotated[str, Field(min_length=1)]
    outcome: Literal["succeed", "fail"] = "succeed"


class Authenticated(BaseModel):
    payment_id: str
    status: str
    failure_code: str | None


class Health(BaseModel):
    status: str
