"""The operator token of `creditgate serve` when CREDITGATE_ADMIN_TOKEN is unset: generated on
first start, kept in the data directory (mode 0600), printed once."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import typer

FILE_NAME = "admin-token"


def token_path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def ensure(data_dir: Path, base_url: str) -> str:
    """The saved operator token, generating (and announcing) it when there is none yet."""
    path = token_path(data_dir)
    if path.exists():
        token = path.read_text().strip()
        if token:
            hint = f"export CREDITGATE_ADMIN_TOKEN=$(cat {path})"
            typer.echo(f"creditgate: operator token in {path} ({hint})", err=True)
            return token
    data_dir.mkdir(parents=True, exist_ok=True)
    token = "cgo_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    os.chmod(path, 0o600)
    typer.echo(
        "creditgate: generated the operator token (shown only this once; saved in "
        f"{path}, mode 0600):\n\n    {token}\n\n"
        "  Use it as a Bearer token for the admin API, e.g.:\n"
        f"    export CREDITGATE_ADMIN_TOKEN=$(cat {path})\n"
        f'    curl -H "Authorization: Bearer $CREDITGATE_ADMIN_TOKEN" {base_url}/admin/v1/accounts\n',
        err=True,
    )
    return token
