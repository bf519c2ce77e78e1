"""What every request handler needs: the process's workflow context."""

from __future__ import annotations

from fastapi import Request

from creditgate.payments.gateway import CardProcessor
from creditgate.workflows.context import Context

Services = Context  # the name the handlers use


def services(request: Request) -> Context:
    svc: Context = request.app.state.services
    return svc


def processor(request: Request) -> CardProcessor:
    """The configured card processor."""
    return services(request).require_processor()
