"""Request rate limits per caller, and the IETF RateLimit headers that tell callers where they stand.

A caller with an API key is limited by its key (`check_key_rate`); every other `/api/*` or `/mcp` request by its
client address (`client_rate_limit`); `rate_limit_headers` writes the fields. Who is limited, how the client
address is found behind trusted proxies, the headers and the key: docs/architecture.md, "Before any handler".
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import re
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from api import appkeys, errors
from api.apikeys import ApiKey, rate_interval_us
from api.rate_checks import RateState
from shared.config import ServerSettings
from shared.keys import PREFIX

ANONYMOUS = "anon"
KEY = "key"
STORE_TIMEOUT_S = 0.5
MAX_FORWARDED_HOPS = 32
MAX_ADDRESS_CHARS = 64  # the longest IPv6 text with brackets and a port is 47 characters
IPV6_GROUP_BITS = 64
BEARER = "bearer "
# HTTP's optional whitespace: the only padding taken off a credential (str.strip() would also take Unicode spaces,
# so a genuine token or key padded with U+00A0 would pass as itself)
OWS = " \t"
LIMITED_PREFIX = "/api/"
LIMITED_PATHS = frozenset({"/mcp"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_BRACKETED = re.compile(r"\[([^\]]+)\](?::[0-9]{1,5})?")  # [v6] or [v6]:port
_IPV4_PORT = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,3}){3}):[0-9]{1,5}")

log = structlog.get_logger("api.ratelimits")


@dataclass(frozen=True)
class Policy:
    name: str  # ANONYMOUS or KEY: the policy's name in the headers
    interval_us: int
    burst: int

    @classmethod
    def anonymous(cls, server: ServerSettings) -> Policy:
        return cls(ANONYMOUS, rate_interval_us(server.anon_rate), server.anon_burst)

    @classmethod
    def of_key(cls, api_key: ApiKey) -> Policy:
        return cls(KEY, api_key.interval_us, api_key.burst)

    @property
    def window_s(self) -> int:
        """Seconds an empty quota takes to refill: the `w` of a quota of `burst` requests."""
        return max(1, _ceil_s(self.interval_us * self.burst))


@dataclass(frozen=True)
class Limit:
    """A request's rate-limit check: its policy and what the check found."""

    policy: Policy
    state: RateState

    @property
    def retry_after_s(self) -> int:
        return max(1, _ceil_s(self.state.wait_us))

    def header_fields(self) -> dict[str, str]:
        policy, state = self.policy, self.state
        if state.remaining > 0:
            reset_s = _ceil_s(state.reset_us)
        else:  # none left: until the next request may go (Retry-After, on a 429)
            reset_s = max(1, _ceil_s(state.reset_us - policy.interval_us * (policy.burst - 1)))
        return {
            "RateLimit-Policy": f'"{policy.name}";q={policy.burst};w={policy.window_s}',
            "RateLimit": f'"{policy.name}";r={state.remaining};t={reset_s}',
        }


RATE_LIMIT = web.RequestKey("rate_limit", Limit)


@web.middleware
async def client_rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Limits requests to `/api/*` and `/mcp` not made with a valid API key, per client address. Place it inside
    `request_context`, which turns its 429 into the JSON answer."""
    if is_limited(request):
        await check_anonymous_rate(request)
    return await handler(request)


async def rate_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the RateLimit fields of the request's check, on whatever answer it gets."""
    if RATE_LIMIT in request:
        response.headers.update(request[RATE_LIMIT].header_fields())


async def check_key_rate(request: web.Request, api_key: ApiKey) -> None:
    """The key's rate limit, checked once per request (calling again reuses the answer) and recorded for the
    headers. Raises TooManyRequests (429 with Retry-After) over the limit."""
    limit = request.get(RATE_LIMIT)
    if limit is None or limit.policy.name != KEY:
        state = await request.app[appkeys.API_KEYS].check_rate_state(api_key)
        limit = request[RATE_LIMIT] = Limit(Policy.of_key(api_key), state)
    if limit.state.wait_us > 0:
        structlog.contextvars.bind_contextvars(rate_limited=KEY)
        raise errors.TooManyRequests(
            f"api key rate limit exceeded ({api_key.rate:g}/s)", retry_after=limit.retry_after_s
        )


async def check_anonymous_rate(request: web.Request) -> None:
    """The per-address limit of a request without a valid API key, recorded for the headers. Raises
    TooManyRequests over the limit; lets the request go when Redis cannot answer in time."""
    settings = request.app[appkeys.SETTINGS]
    policy = Policy.anonymous(settings.server)
    try:
        if presented_key(request) is not None:
            async with asyncio.timeout(STORE_TIMEOUT_S):
                if await _limited_by_key(request):
                    return
        address = client_address(request, trusted_networks(settings.server.trusted_proxies))
        rate_key = anonymous_rate_key(address)
        # (the check gives up on Redis after RateChecks' timeout)
        state = await request.app[appkeys.API_KEYS].gcra(rate_key, policy.interval_us, policy.burst)
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("client rate limit unavailable; request not limited", error=type(exc).__name__)
        return
    limit = request[RATE_LIMIT] = Limit(policy, state)
    if state.wait_us > 0:
        structlog.contextvars.bind_contextvars(rate_limited=ANONYMOUS)
        raise errors.TooManyRequests(
            f"rate limit exceeded for callers without an api key "
            f"({settings.server.anon_rate:g}/s, {policy.burst} at once)",
            retry_after=limit.retry_after_s,
        )


def is_limited(request: web.Request) -> bool:
    """Whether the request goes to `/api/*` or `/mcp` (by its route; by its path when no route matches)."""
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else request.path
    return path.startswith(LIMITED_PREFIX) or path in LIMITED_PATHS


@functools.lru_cache(maxsize=4096)  # a few thousand callers' keys kept (a sha256 each)
def anonymous_rate_key(address: str) -> str:
    digest = hashlib.sha256(address.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return f"{PREFIX}:anon:rl:{digest}"


async def _limited_by_key(request: web.Request) -> bool:
    """A request with a valid key is authenticated and limited by its key here, once (`identify` keeps the caller
    for the route); one whose key is not valid is limited as anonymous (routes that need a caller answer 401)."""
    if presented_key(request) is None:
        return False
    from api.identity import identify  # identify limits by the key through check_key_rate

    try:
        return (await identify(request)).api_key is not None
    except errors.Unauthorized:
        return False


def presented_key(request: web.Request) -> str | None:
    """The API key the request presents (`X-API-Key`, else `Authorization: Bearer`), unchecked."""
    header = request.headers.get("X-API-Key")
    if header is not None:
        return header.strip(OWS)
    authorization = request.headers.get("Authorization", "")
    if authorization[: len(BEARER)].lower() == BEARER:
        return authorization[len(BEARER) :].strip(OWS)
    return None


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The canonical address the request's limit is kept for (docs/architecture.md, "Before any handler")."""
    remote = request.remote or ""
    peer, peer_canonical = _peer(remote)
    if peer is None:
        return remote or "unknown"  # not an IP socket: one limit for all of its callers
    if not trusted:
        return peer_canonical
    address = peer
    if _is_trusted(peer, trusted):
        for hop in reversed(forwarded_hops(request)):
            forwarded = parse_address(hop)
            if forwarded is None:
                break  # a trusted proxy wrote something that is not an address: the client is that proxy
            address = forwarded
            if not _is_trusted(forwarded, trusted):
                break
    return canonical(address)


@functools.lru_cache(maxsize=4096)  # the TCP peers of the last few thousand connections, each parsed once
def _peer(remote: str) -> tuple[IPAddress | None, str]:
    peer = parse_address(remote)
    return peer, canonical(peer) if peer is not None else ""


def forwarded_hops(request: web.Request) -> list[str]:
    """The last MAX_FORWARDED_HOPS entries of X-Forwarded-For (every such header line, in order), left to right."""
    joined = ",".join(request.headers.getall("X-Forwarded-For", ()))
    hops = joined.rsplit(",", MAX_FORWARDED_HOPS)
    return hops[1:] if len(hops) > MAX_FORWARDED_HOPS else hops


def parse_address(text: str) -> IPAddress | None:
    """An IP address (also `[v6]`, `[v6]:port` or `v4:port`), IPv4-mapped IPv6 as IPv4; None for anything else."""
    text = text.strip()
    if not text or len(text) > MAX_ADDRESS_CHARS:
        return None
    match = _BRACKETED.fullmatch(text) or _IPV4_PORT.fullmatch(text)
    try:
        address = ipaddress.ip_address(match.group(1) if match else text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def canonical(address: IPAddress) -> str:
    """IPv4 as dotted quad; IPv6 as its /64 in compressed form (no zone), e.g. `2001:db8:0:1::/64`."""
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    prefix = int(address) >> (128 - IPV6_GROUP_BITS) << (128 - IPV6_GROUP_BITS)
    return str(ipaddress.IPv6Network((prefix, IPV6_GROUP_BITS)))


@functools.cache
def trusted_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """SERVER402_TRUSTED_PROXIES as networks (already validated by shared/config.py), parsed once."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _is_trusted(address: IPAddress, trusted: tuple[Network, ...]) -> bool:
    return any(address in network for network in trusted)  # an IPv4 address is in no IPv6 network, and back


def _ceil_s(microseconds: int) -> int:
    return max(0, -(-microseconds // 1_000_000))
