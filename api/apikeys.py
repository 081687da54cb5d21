"""API keys: issued by the operator (`python -m api.admin keys ...`), stored hashed, each with its own rate limit.

A key reads `s402k_<keyId>_<secret>`: keyId is 12 lowercase hex characters (public: it names the key in listings
and logs), secret is `secrets.token_urlsafe(32)`. Only sha256 of the whole key text is stored; the plaintext is
returned once, by `ApiKeyStore.create`, and cannot be recovered.

The same GCRA checks (`CHECK_RATE`, `ApiKeyStore.gcra`, api/rate_checks.py) also limit callers without a key, per
client address (`api/ratelimits.py`). The keys' Redis keys: docs/architecture.md, "Redis".
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Mapping, Sequence

import msgspec
from redis.asyncio import Redis

from api.rate_checks import RateChecks, RateState
from shared.clock import iso_us
from shared.keys import PREFIX, SCRIPTS, registered
from shared.models import Camel

KEY_PREFIX = "s402k_"
MAX_PRESENTED_CHARS = 200
MAX_NAME_CHARS = 64
MAX_RATE = 10_000.0
MAX_BURST = 10_000
# Rates slower than one request a year behave as one a year (keeps the limiter's arithmetic exact).
MAX_INTERVAL_US = 365 * 86_400 * 1_000_000
ALL_SERVICES = "*"
KEYS_SET = f"{PREFIX}:apikeys"

_KEY_ID = re.compile(r"[0-9a-f]{12}")
_PRESENTED = re.compile(r"s402k_([0-9a-f]{12})_[A-Za-z0-9_-]{1,150}")
_json = msgspec.json.Encoder()


def apikey_key(key_id: str) -> str:
    return f"{PREFIX}:apikey:{key_id}"


def apikey_rate_key(key_id: str) -> str:
    return f"{PREFIX}:apikey:rl:{key_id}"


# The scripts that change the keys above, each in shared/lua/<name>.lua (its KEYS and ARGV at its top).
CREATE_KEY = SCRIPTS["apikey_create"]  # a new key stored unless its id is taken
REVOKE_KEY = SCRIPTS["apikey_revoke"]  # revoked once; its rate-limit state goes
CHECK_RATE = SCRIPTS["rate_check"]  # GCRA on Redis's clock (api/ratelimits.py uses it too, through gcra)


def rate_interval_us(rate: float) -> int:
    """The GCRA interval of `rate` requests per second, in whole microseconds (at least 1, at most a year)."""
    return max(1, min(MAX_INTERVAL_US, math.ceil(1_000_000 / rate)))


class ApiKey(Camel, frozen=True):
    """One key as listed and authenticated; never holds the secret or its hash."""

    id: str
    name: str
    services: tuple[str, ...] | None  # canonical service ids; None: every service
    rate: float
    burst: int
    created_at: str
    revoked_at: str | None

    def allows(self, service_id: str) -> bool:
        """Whether the key may call `service_id` (a canonical id: resolve aliases through the catalog first)."""
        return self.services is None or service_id in self.services

    @property
    def client_id(self) -> str:
        return "key:" + self.id

    @property
    def interval_us(self) -> int:
        return rate_interval_us(self.rate)


class ApiKeyStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._create = registered(redis, CREATE_KEY)
        self._revoke = registered(redis, REVOKE_KEY)
        self._rate_checks = RateChecks(registered(redis, CHECK_RATE))

    async def create(self, name: str, services: Sequence[str] | None, rate: float, burst: int) -> tuple[ApiKey, str]:
        """Issue a key; returns its record and the key text, which is shown this once and never stored."""
        validate(name, services, rate, burst)
        created_at = iso_us()
        while True:
            key_id = secrets.token_hex(6)
            plaintext = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            key = ApiKey(
                id=key_id,
                name=name,
                services=None if services is None else tuple(dict.fromkeys(services)),
                rate=float(rate),
                burst=burst,
                created_at=created_at,
                revoked_at=None,
            )
            fields = _to_hash(key, _digest(plaintext))
            if await self._create(keys=[apikey_key(key_id), KEYS_SET], args=[key_id, *fields]):
                return key, plaintext

    async def list(self) -> builtins.list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        ids = sorted(_text(key_id) for key_id in await self._redis.smembers(KEYS_SET))  # type: ignore[misc]
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_id in ids:
                pipe.hgetall(apikey_key(key_id))
            records = await pipe.execute()
        found = [_from_hash(record)[0] for record in records if record]
        return sorted(found, key=lambda key: (key.created_at, key.id))

    async def get(self, key_id: str) -> ApiKey | None:
        record = await self._record(key_id)
        return None if record is None else record[0]

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a key (again: no change). None when there is no such key."""
        if not _KEY_ID.fullmatch(key_id):
            return None
        if not await self._revoke(keys=[apikey_key(key_id), apikey_rate_key(key_id)], args=[iso_us()]):
            return None
        return await self.get(key_id)

    async def authenticate(self, presented: str) -> ApiKey | None:
        """The active key `presented` is, or None (malformed, unknown, wrong secret, revoked). Never raises on input."""
        if not isinstance(presented, str) or len(presented) > MAX_PRESENTED_CHARS:
            return None
        match = _PRESENTED.fullmatch(presented)
        if match is None:
            return None
        record = await self._record(match.group(1))
        if record is None:
            return None
        key, stored_hash = record
        if not hmac.compare_digest(stored_hash.encode(), _digest(presented).encode()):
            return None
        return key if key.revoked_at is None else None

    async def check_rate_state(self, key: ApiKey) -> RateState:
        """The key's rate limit checked (and this request counted when it may proceed), with what is left."""
        return await self.gcra(apikey_rate_key(key.id), key.interval_us, key.burst)

    async def gcra(self, rate_key: str, interval_us: int, burst: int) -> RateState:
        """One check of the GCRA limit kept at `rate_key`: `burst` requests at once, then one per interval. Checks
        that arrive together go to Redis as one call (`RateChecks`)."""
        return await self._rate_checks.check(rate_key, interval_us, burst)

    async def _record(self, key_id: str) -> tuple[ApiKey, str] | None:
        if not _KEY_ID.fullmatch(key_id):
            return None
        record = await self._redis.hgetall(apikey_key(key_id))  # type: ignore[misc]
        return _from_hash(record) if record else None


def validate(name: str, services: Sequence[str] | None, rate: float, burst: int) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
        raise ValueError(f"name must be 1 to {MAX_NAME_CHARS} printable characters")
    if services is not None and (
        isinstance(services, str) or not services or not all(isinstance(s, str) and s for s in services)
    ):
        raise ValueError("services must be a non-empty list of service ids, or None for every service")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate must be a number of requests per second, greater than 0 and at most {MAX_RATE:g}")
    if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= MAX_BURST:
        raise ValueError(f"burst must be a whole number from 1 to {MAX_BURST}")


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _to_hash(key: ApiKey, digest: str) -> list[str]:
    services = ALL_SERVICES if key.services is None else _json.encode(list(key.services)).decode()
    return [
        *("id", key.id, "name", key.name, "hash", digest, "services", services),
        *("rate", repr(key.rate), "burst", str(key.burst), "createdAt", key.created_at, "revokedAt", ""),
    ]


def _from_hash(record: Mapping[bytes | str, bytes | str]) -> tuple[ApiKey, str]:
    fields = {_text(name): _text(value) for name, value in record.items()}
    services = fields["services"]
    key = ApiKey(
        id=fields["id"],
        name=fields["name"],
        services=None if services == ALL_SERVICES else tuple(msgspec.json.decode(services, type=list[str])),
        rate=float(fields["rate"]),
        burst=int(fields["burst"]),
        created_at=fields["createdAt"],
        revoked_at=fields["revokedAt"] or None,
    )
    return key, fields["hash"]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
