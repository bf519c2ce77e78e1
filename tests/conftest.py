"""Fixtures: every backend-parametrized test runs on SQLite and on PostgreSQL.

PostgreSQL tests use a database created for this run and dropped afterwards. Without a
reachable PostgreSQL they are skipped loudly, and under CI=true they fail instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import support
from tests.support import LiveServer

BACKENDS = ["sqlite", "postgresql"]
pytest_plugins = ["tests.browser_support"]  # the `browser` and `page` fixtures (headless chromium)


def _pg_or_skip() -> None:
    support.pg_or_skip()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per backend for the session; tests use fresh account ids."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "creditgate.db"
        url = f"sqlite:///{path}"
        support.prepare(support.make_settings(url, path.parent))
        yield url
        return
    _pg_or_skip()
    url = support.create_pg_database()
    try:
        support.prepare(support.make_settings(url, tmp_path_factory.mktemp("pg")))
        yield url
    finally:
        support.drop_pg_database(url)


@pytest.fixture(scope="session")
def fresh_template(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, seeded database per backend that every fresh database is a copy of:
    migrating each one from scratch cost ~2 s apiece on PostgreSQL."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        support.prepare(support.make_settings(f"sqlite:///{path}", path.parent))
        yield str(path)
        return
    _pg_or_skip()
    url = support.create_pg_database()
    try:
        support.prepare(support.make_settings(url, tmp_path_factory.mktemp("template")))
        yield url
    finally:
        support.drop_pg_database(url)


@pytest.fixture
def fresh_database_url(backend: str, tmp_path: Path, fresh_template: str) -> Iterator[str]:
    """A brand-new, migrated database for tests that need an isolated world (a copy of the
    session's template: the same schema and seed as migrating it anew)."""
    if backend == "sqlite":
        target = tmp_path / "fresh.db"
        for suffix in ("", "-wal", "-shm"):
            if Path(fresh_template + suffix).exists():
                shutil.copyfile(fresh_template + suffix, str(target) + suffix)
        yield f"sqlite:///{target}"
        return
    url = support.create_pg_database(template=fresh_template)
    try:
        yield url
    finally:
        support.drop_pg_database(url)


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server on loopback per backend, shared by the session."""
    settings = support.make_settings(database_url, tmp_path_factory.mktemp("data"))
    with support.live_server(settings) as live:
        yield live
