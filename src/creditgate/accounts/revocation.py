"""Resolved tokens, cached per process, and revocation reaching every process at once.

A revocation queues `NOTIFY creditgate_tokens, '<token id>'` in its own transaction; every
server process listens on that channel (one dedicated connection, `db.notify.listen`) and
evicts the token the moment the revocation commits. While the listener is down a revocation
could be missed, so the cache then caches nothing (and is emptied). SQLite has one process:
the revoking process evicts in-process, and entries live `LOCAL_SECONDS` at most (so a
`creditgate tokens revoke` run beside a SQLite server is seen within that).

A lookup that started before an eviction must not put back what was evicted: `begin()` hands
out the cache's generation, every eviction (and every listener up/down) bumps it, and `put`
with a stale generation stores nothing. Concurrent misses on one token share one lookup
(`resolve`), so a cold cache under load opens one database read per token, not one per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from creditgate.accounts.principal import Principal
from creditgate.db.notify import listen, notify

CHANNEL = "creditgate_tokens"
LOCAL_SECONDS = 5.0  # without a listener (SQLite): how long an entry may be trusted
LISTENED_SECONDS = 300.0  # with one: a bound, not the mechanism (evictions arrive by NOTIFY)
MAX_ENTRIES = 10_000


class TokenCache:
    """Principals by token digest (SHA-256 hex of the secret)."""

    def __init__(self, *, listened: bool) -> None:
        self.listened = listened  # PostgreSQL: caching waits for the listener
        self.listening = False
        self.generation = 0
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lookups: dict[str, asyncio.Task[Principal]] = {}

    @property
    def active(self) -> bool:
        return self.listening or not self.listened

    def get(self, digest: str) -> Principal | None:
        hit = self._entries.get(digest)
        if hit is None or not self.active:
            return None
        if hit[1] <= time.monotonic():
            del self._entries[digest]
            return None
        return hit[0]

    async def resolve(self, digest: str, lookup: Callable[[], Awaitable[Principal]]) -> Principal:
        """The cached principal, or `lookup()`'s (shared by every concurrent miss on `digest`,
        cached unless evicted meanwhile); its errors reach every caller."""
        found = self.get(digest)
        if found is not None:
            return found
        task = self._lookups.get(digest)
        if task is None:
            task = asyncio.ensure_future(self._lookup(digest, lookup))
            self._lookups[digest] = task
            task.add_done_callback(lambda done: self._lookup_done(digest, done))
        return await asyncio.shield(task)  # a caller that goes away does not cancel the others'

    async def _lookup(self, digest: str, lookup: Callable[[], Awaitable[Principal]]) -> Principal:
        generation = self.begin()
        found = await lookup()
        self.put(digest, found, generation)
        return found

    def _lookup_done(self, digest: str, task: asyncio.Task[Principal]) -> None:
        if self._lookups.get(digest) is task:
            del self._lookups[digest]
        if not task.cancelled():
            task.exception()  # retrieved here: every caller may have gone away

    def begin(self) -> int:
        """The generation to hand back to `put` after the lookup."""
        return self.generation

    def put(self, digest: str, principal: Principal, generation: int) -> None:
        """Cache a lookup's result, unless anything was evicted since it began."""
        if generation != self.generation or not self.active:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        ttl = LISTENED_SECONDS if self.listened else LOCAL_SECONDS
        self._entries[digest] = (principal, time.monotonic() + ttl)

    def evict_token(self, token_id: str) -> None:
        """Forget every entry of this token (a revocation, here or in another process)."""
        self.generation += 1
        for digest in [d for d, (p, _) in self._entries.items() if p.token_id == token_id]:
            del self._entries[digest]

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def listener_up(self) -> None:
        self.clear()  # anything revoked while down is forgotten
        self.listening = True

    def listener_down(self) -> None:
        self.listening = False
        self.clear()

    async def listen(self, database_url: str) -> None:
        """Evict on every revocation any process commits, until cancelled (PostgreSQL)."""
        await listen(database_url, CHANNEL, self.evict_token, self.listener_up, self.listener_down)


async def announce_revoked(conn: AsyncConnection, token_id: str) -> None:
    """Tell every process, at commit of `conn`'s transaction, that `token_id` is revoked."""
    await notify(conn, CHANNEL, token_id)
