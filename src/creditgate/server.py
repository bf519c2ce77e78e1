"""The composition root: the app factory uvicorn imports in each worker process
(`creditgate.server:make_app`), with the periodic jobs wired in."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI

from creditgate import jobs, proxy
from creditgate.api import create_app
from creditgate.config import Settings
from creditgate.observability import logs
from creditgate.workflows.context import Context


async def run_jobs(ctx: Context) -> None:
    """The periodic jobs in-process (CREDITGATE_RUN_JOBS, on by default): the embedded setup
    needs no separate `creditgate worker`. Safe with several processes."""
    await jobs.run_forever(ctx)


def make_app() -> FastAPI:
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level)
    background: list[Callable[[Context], Coroutine[Any, Any, None]]] = [run_jobs] if settings.run_jobs else []
    if settings.usage_apply == "deferred":  # usage is posted off the request path, here too
        background.append(jobs.run_usage_applier)
    app = create_app(settings, background=background or None)
    proxy.install(app)  # the metering proxy: /openai/v1/..., /anthropic/v1/... (docs/proxy.md)
    return app
