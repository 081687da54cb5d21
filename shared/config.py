"""Settings: every knob of server402, read from the environment in one place.

`Settings.from_env(os.environ)` is the only reader of the environment in `api/`, `workers/` and `shared/`.
Each setting is declared once in `SETTINGS` (name, parser, default, meaning); the README's settings table is
checked against that list by a test, so the two cannot drift apart. Invalid values stop the process at start
with one message that names every bad variable.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    """One or more settings are invalid; the message lists each of them."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    port: int
    public_url: str
    redis_url: str
    redis_port: int
    data_dir: Path
    log_level: str
    log_format: str
    operator_file: Path
    max_body_bytes: int
    header_read_timeout_s: float
    body_read_timeout_s: float
    trusted_proxies: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    anon_rate: float
    anon_burst: int
    upstream: str
    sandbox_port: int
    access_key_id: str
    access_key_secret: Secret
    region_id: str
    facebody_endpoint: str
    cloudauth_endpoint: str
    upstream_protocol: str
    upstream_connect_timeout_s: float
    upstream_read_timeout_s: float
    upstream_concurrency: int
    ratelimit_margin: float
    worker_max_jobs: int
    worker_batch_jobs: int
    job_deadline_s: float
    job_retention_s: int
    retry_base_s: float
    retry_cap_s: float
    wait_default_s: float
    wait_max_s: float
    health_interval_s: float
    facilitator_port: int
    facilitator_url: str
    facilitator_timeout_s: float
    facilitator_bearer: Secret
    x402_require_payment_id: bool
    x402_reconcile_grace_s: float
    cdp_api_key_id: str
    cdp_api_key_secret: Secret
    facilitator_headers: Secret
    x402_network: str
    x402_asset: str
    x402_asset_name: str
    x402_asset_version: str
    x402_asset_decimals: int
    x402_pay_to: str
    x402_timeout_s: int
    token_secret: Secret
    token_ttl_s: int
    credit_ttl_s: int
    pending_payment_ttl_s: int
    batch_max_bytes: int
    batch_deadline_s: float
    batch_window: int
    anon_batch_free_items: int
    batch_max_deliveries: int
    webhook_allowed_networks: tuple[str, ...]
    image_allowed_networks: tuple[str, ...]
    webhook_timeout_s: float
    webhook_retry_base_s: float
    webhook_max_attempts: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for setting in SETTINGS:
            raw = env.get(setting.env)
            if raw is None or raw.strip() == "":
                try:
                    raw = setting.default(values) if callable(setting.default) else setting.default
                except KeyError:  # the setting it derives from is invalid and already reported
                    continue
            try:
                values[setting.field] = setting.parse(raw.strip())
            except ValueError as exc:
                problems.append(f"{setting.env}={raw!r}: {exc}")
        problems.extend(_cross_checks(values))
        if problems:
            raise ConfigError("invalid settings:\n  " + "\n  ".join(problems))
        return cls(**values)

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"


def _cross_checks(values: dict[str, Any]) -> list[str]:
    problems = []
    if values.get("upstream") == "aliyun" and not (values.get("access_key_id") and values.get("access_key_secret")):
        problems.append(
            "SERVER402_UPSTREAM=aliyun needs ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET"
        )
    if values.get("upstream") == "aliyun":
        for field, env in (("x402_pay_to", "SERVER402_X402_PAY_TO"), ("token_secret", "SERVER402_TOKEN_SECRET")):
            if not values.get(field):
                problems.append(f"SERVER402_UPSTREAM=aliyun needs {env}")
        if 0 < len(values.get("token_secret") or "x" * 32) < 32:
            problems.append("SERVER402_TOKEN_SECRET must be at least 32 characters")
    if values.get("token_secret") == SANDBOX_TOKEN_SECRET and not _sandbox_money(values):
        problems.append(
            "SERVER402_TOKEN_SECRET is the sandbox's public value, which anyone can use to forge payment tokens and "
            "webhook signatures: set your own (32+ characters) when the facilitator or payTo is not the sandbox's"
        )
    if bool(values.get("cdp_api_key_id")) != bool(values.get("cdp_api_key_secret")):
        problems.append("SERVER402_X402_CDP_API_KEY_ID and SERVER402_X402_CDP_API_KEY_SECRET go together")
    if values.get("wait_default_s", 0) > values.get("wait_max_s", 60):
        problems.append("SERVER402_WAIT_DEFAULT_S must not exceed SERVER402_WAIT_MAX_S")
    return problems


def _sandbox_money(values: dict[str, Any]) -> bool:
    """Whether payments go only to the sandbox: its payee, through a facilitator on this machine (loopback)."""
    host = urlsplit(values.get("facilitator_url") or "").hostname or ""
    loopback = host == "localhost" or (host.replace(".", "").isdigit() and host.startswith("127.")) or host == "::1"
    return values.get("x402_pay_to") == SANDBOX_PAY_TO and loopback


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError("must be true or false")
    return value in ("true", "1", "yes")


def _port(raw: str) -> int:
    value = _int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a port number between 1 and 65535")
    return value


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("must be an integer") from None


def _positive_int(raw: str) -> int:
    value = _int(raw)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number") from None
    if not value > 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number") from None
    if not value >= 0:
        raise ValueError("must be 0 or more")
    return value


def _margin(raw: str) -> float:
    value = _positive_float(raw)
    if not 1.0 <= value <= 2.0:
        raise ValueError("must be between 1.0 and 2.0")
    return value


def _endpoint(raw: str) -> str:
    if "://" in raw or "/" in raw or not raw:
        raise ValueError("must be host[:port] without a scheme or path, e.g. facebody.cn-shanghai.aliyuncs.com")
    return raw


def _host(raw: str) -> str:
    if raw == "localhost":
        return raw
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        raise ValueError("must be an IP address or 'localhost'") from None
    return raw


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http or https URL")
    return raw.rstrip("/")


def _redis_url(raw: str) -> str:
    if urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return raw


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _path(raw: str) -> Path:
    path = Path(raw)
    return path if path.is_absolute() else PROJECT_ROOT / path


def _existing_file(raw: str) -> Path:
    path = _path(raw)
    if not path.is_file():
        raise ValueError(f"file {path} does not exist")
    return path


@dataclass(frozen=True)
class Setting:
    env: str
    field: str
    parse: Callable[[str], Any]
    default: str | Callable[[dict[str, Any]], str]
    doc: str


CORE_SETTINGS: tuple[Setting, ...] = (
    Setting("SERVER402_HOST", "host", _host, "127.0.0.1", "Address the API listens on."),
    Setting("SERVER402_PORT", "port", _port, "8402", "Port the API listens on."),
    Setting(
        "SERVER402_PUBLIC_URL",
        "public_url",
        _http_url,
        lambda v: f"http://{v['host']}:{v['port']}",
        "Base URL clients use (OpenAPI `servers`, links); default `http://HOST:PORT`.",
    ),
    Setting(
        "SERVER402_REDIS_PORT",
        "redis_port",
        _port,
        "6402",
        "Port of the embedded Redis that `make run` starts when `REDIS_URL` is not set.",
    ),
    Setting(
        "REDIS_URL",
        "redis_url",
        _redis_url,
        lambda v: f"redis://127.0.0.1:{v['redis_port']}/0",
        "Redis to use; default the embedded one on `SERVER402_REDIS_PORT`.",
    ),
    Setting("SERVER402_DATA_DIR", "data_dir", _path, ".data", "Where the embedded Redis keeps its AOF files."),
    Setting("SERVER402_LOG_LEVEL", "log_level", _choice("debug", "info", "warning", "error"), "info", "Log level."),
    Setting(
        "SERVER402_LOG_FORMAT",
        "log_format",
        _choice("auto", "json", "console"),
        "auto",
        "`json` lines, `console` for people, or `auto`: console on a terminal, JSON otherwise.",
    ),
    Setting(
        "SERVER402_OPERATOR_FILE",
        "operator_file",
        _existing_file,
        "deploy/operator.toml",
        "Operator TOML: prices, payment terms, QPS limits, API-key requirements per service.",
    ),
    Setting(
        "SERVER402_MAX_BODY_BYTES",
        "max_body_bytes",
        _positive_int,
        "1048576",
        "Largest request body accepted; larger bodies get 413.",
    ),
    Setting(
        "SERVER402_HEADER_READ_TIMEOUT_S",
        "header_read_timeout_s",
        _positive_float,
        "10",
        "A connection that has not sent a complete request line and headers this long after it opened, or after "
        "the previous response on it, is closed (so an idle keep-alive connection is closed after this long too).",
    ),
    Setting(
        "SERVER402_BODY_READ_TIMEOUT_S",
        "body_read_timeout_s",
        _positive_float,
        "30",
        "A request whose body has not fully arrived this long after its headers gets 408 and its connection is closed.",
    ),
)


def _sandbox_or(value: str) -> Callable[[dict[str, Any]], str]:
    """A default that differs in sandbox mode (the sandbox's documented key pair, its loopback endpoint)."""

    def default(values: dict[str, Any]) -> str:
        return SANDBOX_DEFAULTS[value](values) if values["upstream"] == "sandbox" else ALIYUN_DEFAULTS[value](values)

    return default


SANDBOX_ACCESS_KEY_ID = "sandbox-access-key-id"
SANDBOX_ACCESS_KEY_SECRET = "sandbox-access-key-secret"
# Hardhat's public test account #1: the sandbox facilitator's ledger pays the gateway here. Not a real wallet.
SANDBOX_PAY_TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SANDBOX_TOKEN_SECRET = "sandbox-token-secret-not-for-production"

SANDBOX_DEFAULTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "access_key_id": lambda v: SANDBOX_ACCESS_KEY_ID,
    "access_key_secret": lambda v: SANDBOX_ACCESS_KEY_SECRET,
    "facebody_endpoint": lambda v: f"127.0.0.1:{v['sandbox_port']}",
    "cloudauth_endpoint": lambda v: f"127.0.0.1:{v['sandbox_port']}",
    "protocol": lambda v: "http",
    "facilitator_url": lambda v: f"http://127.0.0.1:{v['facilitator_port']}",
    "pay_to": lambda v: SANDBOX_PAY_TO,
    "token_secret": lambda v: SANDBOX_TOKEN_SECRET,
    "image_allowed_networks": lambda v: "127.0.0.0/8",  # the sandbox serves its sample images on loopback
}
ALIYUN_DEFAULTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "access_key_id": lambda v: "",
    "access_key_secret": lambda v: "",
    "facebody_endpoint": lambda v: f"facebody.{v['region_id']}.aliyuncs.com",
    "cloudauth_endpoint": lambda v: "cloudauth-intl.ap-southeast-1.aliyuncs.com",
    "protocol": lambda v: "https",
    "facilitator_url": lambda v: "https://x402.org/facilitator",
    "pay_to": lambda v: "",
    "token_secret": lambda v: "",
    "image_allowed_networks": lambda v: "",
}


class Secret(str):
    """A string that never shows itself in a repr (settings may end up in a traceback or a log)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('[redacted]')" if self else "Secret('')"


def _secret(raw: str) -> Secret:
    return Secret(raw)


UPSTREAM_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SERVER402_UPSTREAM",
        "upstream",
        _choice("sandbox", "aliyun"),
        "sandbox",
        "`sandbox` (our Alibaba-compatible server on loopback) or `aliyun` (the real service).",
    ),
    Setting("SERVER402_SANDBOX_PORT", "sandbox_port", _port, "8403", "Port of the sandbox upstream (loopback only)."),
    Setting(
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "access_key_id",
        _secret,
        _sandbox_or("access_key_id"),
        "Access key id for the upstream; sandbox default `sandbox-access-key-id`, required for `aliyun`.",
    ),
    Setting(
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "access_key_secret",
        _secret,
        _sandbox_or("access_key_secret"),
        "Its secret; sandbox default `sandbox-access-key-secret`, required for `aliyun`. Never logged.",
    ),
    Setting("ALIBABA_CLOUD_REGION_ID", "region_id", _endpoint, "cn-shanghai", "Region of the facebody endpoint."),
    Setting(
        "SERVER402_FACEBODY_ENDPOINT",
        "facebody_endpoint",
        _endpoint,
        _sandbox_or("facebody_endpoint"),
        "facebody host[:port]; default `facebody.<region>.aliyuncs.com`, or the sandbox.",
    ),
    Setting(
        "SERVER402_CLOUDAUTH_ENDPOINT",
        "cloudauth_endpoint",
        _endpoint,
        _sandbox_or("cloudauth_endpoint"),
        "Cloudauth-intl host[:port] for FaceLivenessV2; default `cloudauth-intl.ap-southeast-1.aliyuncs.com`.",
    ),
    Setting(
        "SERVER402_UPSTREAM_PROTOCOL",
        "upstream_protocol",
        _choice("http", "https"),
        _sandbox_or("protocol"),
        "`https` for Alibaba, `http` for the sandbox.",
    ),
    Setting(
        "SERVER402_UPSTREAM_CONNECT_TIMEOUT_S",
        "upstream_connect_timeout_s",
        _positive_float,
        "3",
        "Connect timeout of one upstream call.",
    ),
    Setting(
        "SERVER402_UPSTREAM_READ_TIMEOUT_S",
        "upstream_read_timeout_s",
        _positive_float,
        "10",
        "Read timeout of one upstream call.",
    ),
    Setting(
        "SERVER402_UPSTREAM_CONCURRENCY",
        "upstream_concurrency",
        _positive_int,
        "256",
        "Upstream calls in flight per worker process.",
    ),
    Setting(
        "SERVER402_RATELIMIT_MARGIN",
        "ratelimit_margin",
        _margin,
        "1.08",
        "Upstream calls are spaced this much wider than 1/qps: 1.08 absorbs 80 ms of jitter between a call's slot "
        "and its arrival upstream.",
    ),
)

JOB_SETTINGS: tuple[Setting, ...] = (
    Setting("SERVER402_WORKER_MAX_JOBS", "worker_max_jobs", _positive_int, "512", "Jobs in flight per worker."),
    Setting(
        "SERVER402_WORKER_BATCH_JOBS",
        "worker_batch_jobs",
        _positive_int,
        "64",
        "Of those, at most this many batch items (single calls always find room; add workers for more).",
    ),
    Setting(
        "SERVER402_JOB_DEADLINE_S",
        "job_deadline_s",
        _positive_float,
        "120",
        "A job not finished this long after it was accepted, retries included, fails (or expires if it never ran).",
    ),
    Setting(
        "SERVER402_JOB_RETENTION_S",
        "job_retention_s",
        _positive_int,
        "3600",
        "How long finished jobs and their results are kept; then `GET /api/jobs/{id}` answers 410.",
    ),
    Setting("SERVER402_RETRY_BASE_S", "retry_base_s", _positive_float, "0.2", "First retry backoff (full jitter)."),
    Setting("SERVER402_RETRY_CAP_S", "retry_cap_s", _positive_float, "5", "Largest retry backoff."),
    Setting(
        "SERVER402_WAIT_DEFAULT_S",
        "wait_default_s",
        _positive_float,
        "30",
        "Blocking wait of a tool call without `Prefer: wait=N`.",
    ),
    Setting("SERVER402_WAIT_MAX_S", "wait_max_s", _positive_float, "60", "Longest blocking wait or long poll."),
    Setting(
        "SERVER402_HEALTH_INTERVAL_S",
        "health_interval_s",
        _positive_float,
        "60",
        "Seconds between two probe runs of the health worker (rounded onto the clock).",
    ),
)


def _evm_address(raw: str) -> str:
    if len(raw) != 42 or not raw.startswith("0x"):
        raise ValueError("must be a 0x-prefixed 20-byte hex address")
    try:
        int(raw[2:], 16)
    except ValueError:
        raise ValueError("must be a 0x-prefixed 20-byte hex address") from None
    return raw


def _caip2(raw: str) -> str:
    namespace, _, reference = raw.partition(":")
    if namespace != "eip155" or not reference.isdigit():
        raise ValueError("must be an EVM CAIP-2 network id such as eip155:8453 (Base) or eip155:84532")
    return raw


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")


def _header_object(raw: str) -> Secret:
    """A JSON object of header names to values (kept as text: a Secret, parsed again where it is used)."""
    if not raw:
        return Secret("")
    try:
        headers = json.loads(raw)
    except ValueError:
        raise ValueError("must be a JSON object of header names to values") from None
    valid = isinstance(headers, dict) and all(
        isinstance(k, str) and _HEADER_NAME.fullmatch(k) and isinstance(v, str) and v.isprintable()
        for k, v in headers.items()
    )
    if not valid:
        raise ValueError("must be a JSON object of header names to printable string values")
    return Secret(raw)


def facilitator_headers(settings: Settings) -> dict[str, str]:
    """What every facilitator request carries: the configured headers, and the bearer token."""
    headers: dict[str, str] = json.loads(settings.facilitator_headers) if settings.facilitator_headers else {}
    if settings.facilitator_bearer:
        headers["Authorization"] = f"Bearer {settings.facilitator_bearer}"
    return headers


def _pay_to(raw: str) -> str:
    return _evm_address(raw) if raw else raw


PAYMENT_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SERVER402_FACILITATOR_PORT",
        "facilitator_port",
        _port,
        "8404",
        "Port of the sandbox x402 facilitator (loopback only) that `make run` starts.",
    ),
    Setting(
        "SERVER402_X402_FACILITATOR_URL",
        "facilitator_url",
        _http_url,
        _sandbox_or("facilitator_url"),
        "x402 facilitator (`/verify`, `/settle`); default the sandbox facilitator, or `https://x402.org/facilitator`.",
    ),
    Setting(
        "SERVER402_X402_FACILITATOR_TIMEOUT_S",
        "facilitator_timeout_s",
        _positive_float,
        "15",
        "How long a /settle is waited for. An answer that does not come in time leaves the payment `settling` "
        "(202) until the reconciler asks again, never 'nothing was charged'.",
    ),
    Setting(
        "SERVER402_X402_REQUIRE_PAYMENT_ID",
        "x402_require_payment_id",
        _bool,
        "false",
        "Require x402's payment-identifier extension on every payment (400 without): a repeat of a payment is then "
        "always recognised, and a lost answer fetched again.",
    ),
    Setting(
        "SERVER402_X402_RECONCILE_GRACE_S",
        "x402_reconcile_grace_s",
        _non_negative_float,
        "120",
        "How long past a payment's validBefore the reconciler still asks for a proof before it ends it "
        "`unconfirmed` (for the operator to check on chain).",
    ),
    Setting(
        "SERVER402_X402_CDP_API_KEY_ID",
        "cdp_api_key_id",
        str,
        "",
        "A Coinbase CDP API key id: set with its secret, every facilitator request carries a fresh CDP JWT.",
    ),
    Setting(
        "SERVER402_X402_CDP_API_KEY_SECRET",
        "cdp_api_key_secret",
        _secret,
        "",
        "That key's secret (an EC key in PEM, or an Ed25519 key in base64). Never logged.",
    ),
    Setting(
        "SERVER402_X402_FACILITATOR_BEARER",
        "facilitator_bearer",
        _secret,
        "",
        "A token sent as `Authorization: Bearer` to the facilitator (/supported, /verify, /settle). Never logged.",
    ),
    Setting(
        "SERVER402_X402_FACILITATOR_HEADERS",
        "facilitator_headers",
        _header_object,
        "",
        'Extra headers for the facilitator, a JSON object such as `{"X-Api-Key": "..."}`. Never logged.',
    ),
    Setting("SERVER402_X402_NETWORK", "x402_network", _caip2, "eip155:8453", "CAIP-2 network payments settle on."),
    Setting(
        "SERVER402_X402_ASSET",
        "x402_asset",
        _evm_address,
        "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        "Token contract payments are made in; default USDC on Base.",
    ),
    Setting("SERVER402_X402_ASSET_NAME", "x402_asset_name", str, "USD Coin", "The token's EIP-712 domain name."),
    Setting("SERVER402_X402_ASSET_VERSION", "x402_asset_version", str, "2", "The token's EIP-712 domain version."),
    Setting("SERVER402_X402_ASSET_DECIMALS", "x402_asset_decimals", _positive_int, "6", "The token's decimals."),
    Setting(
        "SERVER402_X402_PAY_TO",
        "x402_pay_to",
        _pay_to,
        _sandbox_or("pay_to"),
        "Address that receives payments; sandbox default the sandbox ledger's payee, required for `aliyun`.",
    ),
    Setting(
        "SERVER402_X402_TIMEOUT_S",
        "x402_timeout_s",
        _positive_int,
        "300",
        "`maxTimeoutSeconds` of a payment requirement: how long a signed payment stays valid for us.",
    ),
    Setting(
        "SERVER402_TOKEN_SECRET",
        "token_secret",
        _secret,
        _sandbox_or("token_secret"),
        "Key that payment tokens are derived from (HMAC, tokens are never stored); required for `aliyun`, 32+ chars.",
    ),
    Setting(
        "SERVER402_TOKEN_TTL_S",
        "token_ttl_s",
        _positive_int,
        "604800",
        "How long a paid payment token stays usable.",
    ),
    Setting(
        "SERVER402_CREDIT_TTL_S",
        "credit_ttl_s",
        _positive_int,
        "2592000",
        "How long a credit token (a paid call given back after a failure that was not the caller's) stays usable.",
    ),
    Setting(
        "SERVER402_PENDING_PAYMENT_TTL_S",
        "pending_payment_ttl_s",
        _positive_int,
        "900",
        "How long an unpaid (pending) payment can still be paid and looked up.",
    ),
)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _origins(raw: str) -> tuple[str, ...]:
    """Comma-separated origins, each `scheme://host[:port]` with nothing after it (compared lowercased)."""
    origins = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        parts = urlsplit(part)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{part[:80]!r} is not an origin (scheme://host[:port])")
        origins.append(_origin_of(part))
    return tuple(origins)


def _networks(raw: str) -> tuple[str, ...]:
    """Comma-separated CIDR networks, e.g. `127.0.0.0/8,::1/128`."""
    networks = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ValueError(f"{part!r} is not a network (use CIDR, e.g. 127.0.0.0/8)") from None
    return tuple(networks)


BATCH_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SERVER402_BATCH_MAX_BYTES",
        "batch_max_bytes",
        _positive_int,
        "33554432",
        "Largest `POST /api/batches` body (up to 10,000 items); larger bodies get 413.",
    ),
    Setting(
        "SERVER402_BATCH_DEADLINE_S",
        "batch_deadline_s",
        _positive_float,
        "3600",
        "A batch item not finished this long after it was queued fails (or expires, given back, if it never ran).",
    ),
    Setting(
        "SERVER402_BATCH_WINDOW",
        "batch_window",
        _positive_int,
        "256",
        "Items of one batch queued or running at once; each finished item queues the next.",
    ),
    Setting(
        "SERVER402_ANON_BATCH_FREE_ITEMS",
        "anon_batch_free_items",
        _positive_int,
        "100",
        "Items of free services a batch may hold without an API key (paid items are bounded by what was paid).",
    ),
    Setting(
        "SERVER402_BATCH_MAX_DELIVERIES",
        "batch_max_deliveries",
        _positive_int,
        "10001",
        "Webhook deliveries one batch may cause (its items times the job events asked for, plus batch.completed).",
    ),
    Setting(
        "SERVER402_WEBHOOK_ALLOWED_NETWORKS",
        "webhook_allowed_networks",
        _networks,
        "",
        "Private or loopback networks webhooks may still be sent to (CIDR list, e.g. `127.0.0.0/8`); none by default.",
    ),
    Setting(
        "SERVER402_IMAGE_ALLOWED_NETWORKS",
        "image_allowed_networks",
        _networks,
        _sandbox_or("image_allowed_networks"),
        "Private or loopback networks image and video URLs of tool calls may still point at (CIDR list); "
        "sandbox default `127.0.0.0/8` (its sample images), none for `aliyun`.",
    ),
    Setting("SERVER402_WEBHOOK_TIMEOUT_S", "webhook_timeout_s", _positive_float, "10", "Timeout of one delivery."),
    Setting(
        "SERVER402_WEBHOOK_RETRY_BASE_S",
        "webhook_retry_base_s",
        _positive_float,
        "5",
        "Wait before the first redelivery; each next one waits 4 times longer (5 s, 20 s, 80 s, ... up to 6 h).",
    ),
    Setting(
        "SERVER402_WEBHOOK_MAX_ATTEMPTS",
        "webhook_max_attempts",
        _positive_int,
        "8",
        "Delivery attempts before a webhook is given up (each one logged on its job or batch).",
    ),
)

CLIENT_LIMIT_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SERVER402_TRUSTED_PROXIES",
        "trusted_proxies",
        _networks,
        "",
        "Reverse proxies whose `X-Forwarded-For` names the client (CIDR list, e.g. `10.0.0.0/8`); none by default: "
        "the TCP peer is the client.",
    ),
    Setting(
        "SERVER402_ALLOWED_ORIGINS",
        "allowed_origins",
        _origins,
        lambda v: _origin_of(v["public_url"]),
        "Browser origins (`scheme://host[:port]`, comma-separated) whose requests are served; a request with any "
        "other `Origin` gets 403 (DNS-rebinding protection). Default: the public URL's origin.",
    ),
    Setting(
        "SERVER402_ANON_RATE",
        "anon_rate",
        _positive_float,
        "20",
        "Requests per second to `/api/*` and `/mcp` of one client address without an API key (GCRA in Redis).",
    ),
    Setting(
        "SERVER402_ANON_BURST",
        "anon_burst",
        _positive_int,
        "40",
        "Of those, how many may come at once; above the limit the answer is 429 with `Retry-After`.",
    ),
)

SETTINGS: tuple[Setting, ...] = (
    *CORE_SETTINGS,
    *CLIENT_LIMIT_SETTINGS,
    *UPSTREAM_SETTINGS,
    *JOB_SETTINGS,
    *PAYMENT_SETTINGS,
    *BATCH_SETTINGS,
)
