"""Without a reachable PostgreSQL the suite skips the PostgreSQL half loudly; under CI=true
it fails instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODES = [
    "tests/test_cli.py::test_reconcile_over_http",
    "tests/test_migrations.py::test_upgrade_from_empty_downgrade_and_upgrade_again",
]


def _pytest(ci: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREDITGATE_TEST_PG": "postgresql://postgres@127.0.0.1:1/postgres", "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-rs", *NODES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_unreachable_postgres_is_skipped_loudly() -> None:
    proc = _pytest(ci="")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "PostgreSQL half of the suite SKIPPED" in out
    assert "2 passed, 2 skipped" in out


def test_unreachable_postgres_fails_under_ci() -> None:
    proc = _pytest(ci="true")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "CI=true makes this an error" in out
    assert "2 passed" in out
