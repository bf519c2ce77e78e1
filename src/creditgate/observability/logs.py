"""Structured logs (structlog): console or JSON lines on stderr, stdlib loggers included."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(fmt: str = "console", level: str = "info") -> None:
    """Route structlog and the stdlib `logging` (uvicorn's included) through one renderer on
    stderr: `console` (key=value, for people) or `json` (one object per line, for machines)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if fmt == "json" else _identity,
            renderer,
        ],
    )
    handler = _Stderr()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_creditgate", False):
            root.removeHandler(old)
    handler._creditgate = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # ours is creditgate.access
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))  # one line per probe otherwise
    # HTTP clients' own loggers (webhooks: httpx; the proxy's upstream calls: aiohttp) may log
    # whole URLs, which can carry credentials
    for chatty in ("httpx", "httpcore", "aiohttp"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    _route_to_stdlib()


def _route_to_stdlib() -> None:
    """structlog calls become stdlib records (dropped early below the level; rendered by the
    handler `configure` installs, or by logging's last-resort handler before that)."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _identity(_logger: Any, _name: str, event: Any) -> Any:
    return event


def get(name: str) -> Any:
    """A structlog logger; `log.info("event", key=value, ...)`."""
    return structlog.stdlib.get_logger(name)


_route_to_stdlib()
