"""The app factory uvicorn imports in each worker process."""

from fastapi import FastAPI

from creditgate import jobs
from creditgate.api import create_app
from creditgate.api.state import Services
from creditgate.config import Settings


async def _run_jobs(svc: Services) -> None:
    """The periodic jobs in-process (CREDITGATE_RUN_JOBS, on by default): the embedded setup
    needs no separate `creditgate worker`. Safe with several processes."""
    await jobs.run_forever(svc.db, svc.clock)


def make_app() -> FastAPI:
    settings = Settings.from_env()
    return create_app(settings, background=[_run_jobs] if settings.run_jobs else None)
