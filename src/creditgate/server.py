"""The composition root: the app factory uvicorn imports in each worker process
(`creditgate.server:make_app`), with the periodic jobs wired in, and the billing portal and
console (creditgate.web) mounted beside the API."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from creditgate import jobs, proxy, web
from creditgate.api import create_app
from creditgate.api import errors as api_errors
from creditgate.api.app import Background
from creditgate.clock import Clock, system_clock
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.observability import logs
from creditgate.workflows.context import Context


async def run_jobs(ctx: Context) -> None:
    """The periodic jobs in-process (CREDITGATE_RUN_JOBS, on by default): the embedded setup
    needs no separate `creditgate worker`. Safe with several processes."""
    await jobs.run_forever(ctx)


def build_app(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    db: Database | None = None,
    background: list[Background] | None = None,
) -> FastAPI:
    """The API with the portal and console pages (errors under their prefixes are pages)."""
    app = create_app(settings, clock=clock, db=db, background=background)
    web.install(app)
    for prefix in web.PREFIXES:
        api_errors.register_renderer(prefix, web.error_page)
    return app


def make_app() -> FastAPI:
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level)
    background: list[Background] = [run_jobs] if settings.run_jobs else []
    if settings.usage_apply == "deferred":  # usage is posted off the request path, here too
        background.append(jobs.run_usage_applier)
    app = build_app(settings, background=background or None)
    proxy.install(app)  # the metering proxy: /openai/v1/..., /anthropic/v1/... (docs/proxy.md)
    # The ~200,000 objects of the loaded modules and the app live as long as the process: frozen,
    # the full collections stop scanning them (each such scan was a 50-150 ms pause of every
    # request in flight, the open-loop p99 of bench/authorize.py; docs/performance.md).
    gc.collect()
    gc.freeze()
    return app
