"""Standard Webhooks signatures (https://www.standardwebhooks.com/), made by the reference
`standardwebhooks` library.

Secrets are "whsec_" + base64 of random bytes; the HMAC key is the decoded bytes. The
signature header is "v1," + base64(HMAC-SHA256(key, f"{webhook-id}.{webhook-timestamp}.{body}")).
We only generate and check the secret's shape here; the signature itself is the library's.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a "whsec_..." secret. ValueError if it is not one (the library itself
    accepts almost anything, so a malformed secret is refused here first)."""
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value for one send. `body` is the UTF-8 JSON we send
    (the library signs text; encoding it back gives the same bytes)."""
    when = datetime.fromtimestamp(timestamp, UTC)
    return Webhook(secret_key(secret)).sign(msg_id, when, body.decode("utf-8"))


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
