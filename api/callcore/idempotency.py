"""Idempotency-Keys, for tool calls and batches alike: the key is scoped to whoever could have paid (see
api/callcore/calls.py), stored with the id it made and the fingerprint of the request, and a repeat with another
body is 422. The job or batch script stores it in the same step as what it creates (first writer wins)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from api import errors

MAX_IDEMPOTENCY_KEY = 255


def checked_key(key: str) -> str:
    """An Idempotency-Key as sent (400 for one that cannot be a key)."""
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise errors.BadRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters")
    return key


@dataclass(frozen=True)
class Idempotency:
    redis_key: str  # the scoped key (shared.keys.idempotency_key / batch_idempotency_key)
    fingerprint: str  # of the request: another body under the same key is refused

    def value_for(self, made_id: str) -> str:
        """What the creating script stores under the key."""
        return f"{made_id} {self.fingerprint}"

    def made(self, stored: str, what: str) -> str:
        """The id a stored value names (422 when it was made by another request body)."""
        made_id, _, fingerprint = stored.partition(" ")
        if fingerprint != self.fingerprint:
            raise errors.IdempotencyMismatch(f"this Idempotency-Key was already used with a different {what}")
        return made_id

    async def earlier(self, redis: Redis, what: str) -> str | None:
        """The id an earlier request with this key made, looked up before anything is charged."""
        stored: bytes | None = await redis.get(self.redis_key)
        return self.made(stored.decode(), what) if stored is not None else None
