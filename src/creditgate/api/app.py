"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from creditgate.api import (
    admin,
    admin_autotopup,
    admin_billing,
    admin_billing_info,
    admin_portal,
    admin_upstreams,
    admin_webhooks,
    cloudflare,
    docs,
    errors,
    gateway,
    health,
    invoices,
    sandbox,
    webhooks,
    xai,
)
from creditgate.api.fast_routes import Handler, serve_first
from creditgate.api.observe import AccessLog
from creditgate.api.state import Services
from creditgate.clock import Clock, system_clock
from creditgate.config import Settings
from creditgate.db import Database
from creditgate.payments.factory import make_processor
from creditgate.workflows.database import prepare_database

Background = Callable[[Services], Coroutine[Any, Any, Any]]
__all__ = ["create_app", "prepare_database"]  # prepare_database: re-exported for tests and benches


def create_app(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    db: Database | None = None,
    background: list[Background] | None = None,
) -> FastAPI:
    """Build the app. `background` coroutines (the job runner) start with the app and are
    cancelled when it stops."""
    database = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    svc = Services(
        settings=settings, db=database, clock=clock, processor=make_processor(settings, database, clock)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await prepare_database(database, clock)
        tasks = [asyncio.create_task(job(svc)) for job in background or []]
        if svc.tokens.listened:  # revocations from every process evict (accounts/revocation.py)
            tasks.append(asyncio.create_task(svc.tokens.listen(database.url)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await database.dispose()

    # creditgate exports no OpenTelemetry; FastAPI's own telemetry check, on by default, read
    # os.environ on every request (~6 % of an authorize's CPU under py-spy, docs/performance.md)
    no_telemetry = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title="creditgate",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=no_telemetry,  # type: ignore[arg-type]
    )
    app.state.services = svc
    errors.install(app)
    fast_routes: dict[str, Handler] = {
        "/v1/gateway/authorize": gateway.authorize,
        "/v1/gateway/holds/{hold_id}/settle": gateway.settle,
    }
    app.add_middleware(errors.RejectNul)
    app.add_middleware(AccessLog, exact_paths=fast_routes)  # added last: the outermost, it sees every request
    # the hot routes skip FastAPI's own stack, keeping our access log and NUL check
    serve_first(app, fast_routes, lambda inner: AccessLog(errors.RejectNul(inner), exact_paths=fast_routes))
    app.include_router(gateway.router)  # first: the hot paths match without scanning the others
    app.include_router(admin.router)
    app.include_router(admin_webhooks.router)
    app.include_router(webhooks.router)
    app.include_router(admin_billing.router)
    app.include_router(admin_billing_info.router)
    app.include_router(admin_autotopup.router)
    app.include_router(admin_portal.router)
    app.include_router(admin_upstreams.router)  # the metering proxy's upstreams
    app.include_router(cloudflare.router)
    app.include_router(invoices.router)
    app.include_router(sandbox.router)
    app.include_router(xai.router)
    app.include_router(health.router)

    processor_name = svc.processor.name if svc.processor else None
    hidden = {"/webhooks/stripe"} if processor_name != "stripe" else set()
    if processor_name != "sandbox":
        hidden.add("/sandbox/v1/authenticate")
    docs.install(app, hidden=hidden)

    return app
