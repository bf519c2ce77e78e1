"""`creditgate serve`: checks before listening (settings, port, database), the operator token,
the metrics directory of several workers; then uvicorn runs the composition root's app factory
(`creditgate.server:make_app`) in each worker."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import socket
import tempfile

import typer

from creditgate.cli import admin_token
from creditgate.cli.runtime import fail, load_settings, open_database
from creditgate.config import ConfigError, Settings
from creditgate.observability import logs
from creditgate.observability.metrics import MULTIPROC_ENV


def _check_port(host: str, port: int) -> None:
    """ConfigError when host:port cannot be listened on (busy, or not an address of this host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(f"CREDITGATE_PORT: cannot listen on {host}:{port}: {reason}") from None


async def _check_database(settings: Settings) -> None:
    db = await open_database(settings)
    await db.dispose()


def serve(host: str | None, port: int | None, workers: int) -> None:
    """Check everything that can be checked, then hand over to uvicorn."""
    import uvicorn

    settings = load_settings()
    logs.configure(settings.log_format, settings.log_level)
    host, port = host or settings.host, port or settings.port
    try:
        _check_port(host, port)
        asyncio.run(_check_database(settings))
    except ConfigError as exc:
        fail(str(exc), 2)
    if settings.admin_token is None:
        os.environ["CREDITGATE_ADMIN_TOKEN"] = admin_token.ensure(settings.data_dir, f"http://{host}:{port}")
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        shared = tempfile.mkdtemp(prefix="creditgate-metrics-")
        atexit.register(shutil.rmtree, shared, ignore_errors=True)
        os.environ[MULTIPROC_ENV] = shared
    typer.echo(
        f"creditgate: database {settings.database_url.split('://')[0]}, payments {settings.payments}, "
        f"listening on http://{host}:{port} (API docs at /docs)",
        err=True,
    )
    uvicorn.run(
        "creditgate.server:make_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        timeout_worker_healthcheck=30,  # a worker still importing on a busy host is not dead
    )
