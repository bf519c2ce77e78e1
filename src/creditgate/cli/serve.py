"""The app factory uvicorn imports in each worker process."""

from fastapi import FastAPI

from creditgate.api import create_app
from creditgate.config import Settings


def make_app() -> FastAPI:
    return create_app(Settings.from_env())
