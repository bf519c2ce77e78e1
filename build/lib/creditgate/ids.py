"""Identifiers: operator-chosen account ids, and random ids for our own rows."""

from __future__ import annotations

import re
import secrets
import uuid

_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def is_valid_account_id(value: object) -> bool:
    """Cloudflare-style 32-hex ids, xAI-style UUIDs and any similar slug of up to 64 chars."""
    return isinstance(value, str) and bool(_ACCOUNT_ID.match(value))


def new_id(prefix: str) -> str:
    """A random, URL-safe row id such as `hold_5f2c...`."""
    return f"{prefix}_{uuid.uuid4().hex}"


def new_secret(nbytes: int = 32) -> str:
    """Random URL-safe secret material."""
    return secrets.token_urlsafe(nbytes)
