"""Storage of the metering proxy's upstreams (migration 0017_upstreams) and the encryption of
their API keys at rest.

An upstream key is encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from
CREDITGATE_UPSTREAM_ENCRYPTION_KEY, or, when that is unset, from a random secret generated
once into `<data_dir>/upstream-key` (mode 0600), like the operator token. The plain key is
only ever held in memory, to call the upstream.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.config import Settings
from creditgate.db import metadata
from creditgate.db.types import UTCDateTime
from creditgate.errors import ServiceUnavailable

KEY_FILE = "upstream-key"
UNDECRYPTABLE = (
    "the upstream's key cannot be decrypted: CREDITGATE_UPSTREAM_ENCRYPTION_KEY (or the data "
    "directory's upstream-key) differs from when it was added; add the upstream again"
)

upstreams = Table(
    "upstreams",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("provider", String(16), nullable=False),
    Column("base_url", String(500), nullable=False),
    Column("api_key_encrypted", Text, nullable=False),
    Column("markup_ppm", BigInteger, nullable=False),  # millionths of the catalog cost added on top
    Column("connect_timeout_ms", Integer, nullable=False),
    Column("read_timeout_ms", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# The models an upstream offers, by the name customers call them (the alias, or the upstream's
# own name); one row per (provider family, name), so two upstreams never offer the same name.
upstream_models = Table(
    "upstream_models",
    metadata,
    Column("provider", String(16), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("upstream_id", String(40), ForeignKey("upstreams.id"), nullable=False),
    Column("upstream_model", String(200), nullable=False),
    # per-model sell prices (units per million tokens); when null the catalog price plus markup
    Column("input_rate", BigInteger, nullable=True),
    Column("output_rate", BigInteger, nullable=True),
    Column("cached_input_rate", BigInteger, nullable=True),
    Column("max_output_tokens", Integer, nullable=True),
    Index("ix_upstream_models_upstream_id", "upstream_id"),
)


def _secret(settings: Settings) -> str:
    configured = settings.secret("upstream_encryption_key")
    if configured:
        return configured
    path: Path = settings.data_dir / KEY_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: two processes starting together agree on one secret
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
    text = path.read_text().strip()
    if not text:
        raise ServiceUnavailable(f"the upstream key file {path} is empty")
    return text


def fernet(settings: Settings) -> Fernet:
    """The cipher of upstream keys for these settings."""
    digest = hashlib.sha256(b"creditgate upstream keys\x00" + _secret(settings).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(settings: Settings, api_key: str) -> str:
    return fernet(settings).encrypt(api_key.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    try:
        return fernet(settings).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ServiceUnavailable(UNDECRYPTABLE) from exc


async def insert(conn: AsyncConnection, row: dict[str, Any], models: list[dict[str, Any]]) -> None:
    await conn.execute(upstreams.insert().values(**row))
    await conn.execute(upstream_models.insert(), [{**m, "upstream_id": row["id"]} for m in models])


async def all_rows(conn: AsyncConnection) -> tuple[list[Any], list[Any]]:
    """(upstreams, their models), in id / name order."""
    ups = (await conn.execute(select(upstreams).order_by(upstreams.c.id))).all()
    models = (
        await conn.execute(
            select(upstream_models).order_by(upstream_models.c.provider, upstream_models.c.name)
        )
    ).all()
    return list(ups), list(models)


async def taken_names(conn: AsyncConnection, provider: str, names: list[str]) -> list[str]:
    rows = await conn.execute(
        select(upstream_models.c.name).where(
            upstream_models.c.provider == provider, upstream_models.c.name.in_(names)
        )
    )
    return sorted(r.name for r in rows)


async def remove(conn: AsyncConnection, upstream_id: str) -> bool:
    await conn.execute(delete(upstream_models).where(upstream_models.c.upstream_id == upstream_id))
    result = await conn.execute(delete(upstreams).where(upstreams.c.id == upstream_id))
    return bool(result.rowcount)
