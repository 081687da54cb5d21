"""Settings: every knob of server402, read from the environment in one place.

`Settings.from_env(os.environ)` is the only reader of the environment in `api/`, `workers/` and `shared/`.
Each setting is declared once, in the group of the component that reads it (`GROUPS`: env name, parser,
default, meaning); `Settings` holds one struct per group, and each component is given its group
(`Upstream(settings.upstream)`, `PaymentStore(redis, settings.payments)`), not the whole bag. The README's settings
tables are generated from the declaration (`python -m scripts.settings_doc`) and a test checks they are current.
Invalid values stop the process at start with one message that names every bad variable.
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


class Secret(str):
    """A string that never shows itself in a repr (settings may end up in a traceback or a log)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('[redacted]')" if self else "Secret('')"


class LocalSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What only `scripts/` reads: the ports and data dir of the processes `make run` starts on this machine."""

    redis_port: int
    data_dir: Path
    sandbox_port: int
    facilitator_port: int

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"


class ServerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The API's HTTP front door (api/app.py, its middlewares and limits)."""

    host: str
    port: int
    public_url: str
    max_body_bytes: int
    header_read_timeout_s: float
    body_read_timeout_s: float
    trusted_proxies: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    anon_rate: float
    anon_burst: int


class UpstreamSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The workers' Alibaba Cloud client (workers/upstream.py) and its limiter; the URLs a call may name."""

    mode: str
    access_key_id: Secret
    access_key_secret: Secret
    region_id: str
    facebody_endpoint: str
    cloudauth_endpoint: str
    protocol: str
    connect_timeout_s: float
    read_timeout_s: float
    concurrency: int
    ratelimit_margin: float
    image_allowed_networks: tuple[str, ...]


class JobSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Jobs: the workers' slots, deadlines, retries and retention, the API's blocking waits, the health worker."""

    worker_max_jobs: int
    worker_batch_jobs: int
    batch_nice: int
    deadline_s: float
    retention_s: int
    retry_base_s: float
    retry_cap_s: float
    wait_default_s: float
    wait_max_s: float
    health_interval_s: float


class X402Settings(msgspec.Struct, frozen=True, kw_only=True):
    """x402: the facilitator the API verifies and settles with, and the terms of a payment requirement."""

    facilitator_url: str
    facilitator_timeout_s: float
    require_payment_id: bool
    reconcile_grace_s: float
    cdp_api_key_id: str
    cdp_api_key_secret: Secret
    facilitator_bearer: Secret
    facilitator_headers: Secret
    network: str
    asset: str
    asset_name: str
    asset_version: str
    asset_decimals: int
    pay_to: str
    timeout_s: int


class PaymentSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Payments as stored (shared/payments.py): tokens, credits, pending payments, and the key tokens come from."""

    token_secret: Secret
    token_ttl_s: int
    credit_ttl_s: int
    pending_payment_ttl_s: int


class BatchSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Batches (shared/batches.py, api/routes/batches.py)."""

    max_bytes: int
    deadline_s: float
    window: int
    anon_free_items: int
    max_deliveries: int


class WebhookSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Webhook deliveries (workers/webhooks.py) and the targets a caller may name (api/request_options.py)."""

    allowed_networks: tuple[str, ...]
    timeout_s: float
    retry_base_s: float
    max_attempts: int


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every process's settings: what all of them read (Redis, logs, the operator's terms), then one group per
    component."""

    redis_url: str
    log_level: str
    log_format: str
    event_loop: str
    operator_file: Path
    local: LocalSettings
    server: ServerSettings
    upstream: UpstreamSettings
    jobs: JobSettings
    x402: X402Settings
    payments: PaymentSettings
    batches: BatchSettings
    webhooks: WebhookSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}  # by environment variable: derived defaults read the values before them
        problems: list[str] = []
        for group in GROUPS:
            for setting in group.settings:
                raw = env.get(setting.env)
                if raw is None or raw.strip() == "":
                    try:
                        raw = setting.default(values) if callable(setting.default) else setting.default
                    except KeyError:  # the setting it derives from is invalid and already reported
                        continue
                try:
                    values[setting.env] = setting.parse(raw.strip())
                except ValueError as exc:
                    problems.append(f"{setting.env}={raw!r}: {exc}")
        problems.extend(_cross_checks(values))
        if problems:
            raise ConfigError("invalid settings:\n  " + "\n  ".join(problems))
        fields = {group.name: {s.field: values[s.env] for s in group.settings} for group in GROUPS}
        common = fields.pop("")
        return cls(**common, **{name: group.struct(**fields[name]) for name, group in _GROUPS_BY_NAME.items()})


def _cross_checks(values: dict[str, Any]) -> list[str]:
    problems = []
    aliyun = values.get("SERVER402_UPSTREAM") == "aliyun"
    if aliyun and not (values.get("ALIBABA_CLOUD_ACCESS_KEY_ID") and values.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")):
        problems.append(
            "SERVER402_UPSTREAM=aliyun needs ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET"
        )
    if aliyun:
        for env in ("SERVER402_X402_PAY_TO", "SERVER402_TOKEN_SECRET"):
            if not values.get(env):
                problems.append(f"SERVER402_UPSTREAM=aliyun needs {env}")
        if 0 < len(values.get("SERVER402_TOKEN_SECRET") or "x" * 32) < 32:
            problems.append("SERVER402_TOKEN_SECRET must be at least 32 characters")
    if values.get("SERVER402_TOKEN_SECRET") == SANDBOX_TOKEN_SECRET and not _sandbox_money(values):
        problems.append(
            "SERVER402_TOKEN_SECRET is the sandbox's public value, which anyone can use to forge payment tokens and "
            "webhook signatures: set your own (32+ characters) when the facilitator or payTo is not the sandbox's"
        )
    if bool(values.get("SERVER402_X402_CDP_API_KEY_ID")) != bool(values.get("SERVER402_X402_CDP_API_KEY_SECRET")):
        problems.append("SERVER402_X402_CDP_API_KEY_ID and SERVER402_X402_CDP_API_KEY_SECRET go together")
    if values.get("SERVER402_WAIT_DEFAULT_S", 0) > values.get("SERVER402_WAIT_MAX_S", 60):
        problems.append("SERVER402_WAIT_DEFAULT_S must not exceed SERVER402_WAIT_MAX_S")
    return problems


def _sandbox_money(values: dict[str, Any]) -> bool:
    """Whether payments go only to the sandbox: its payee, through a facilitator on this machine (loopback)."""
    host = urlsplit(values.get("SERVER402_X402_FACILITATOR_URL") or "").hostname or ""
    loopback = host == "localhost" or (host.replace(".", "").isdigit() and host.startswith("127.")) or host == "::1"
    return values.get("SERVER402_X402_PAY_TO") == SANDBOX_PAY_TO and loopback


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


def _niceness(raw: str) -> int:
    value = _int(raw)
    if not 0 <= value <= 19:
        raise ValueError("must be a niceness between 0 and 19")
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


def _secret(raw: str) -> Secret:
    return Secret(raw)


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


def _pay_to(raw: str) -> str:
    return _evm_address(raw) if raw else raw


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


def facilitator_headers(x402: X402Settings) -> dict[str, str]:
    """What every facilitator request carries: the configured headers, and the bearer token."""
    headers: dict[str, str] = json.loads(x402.facilitator_headers) if x402.facilitator_headers else {}
    if x402.facilitator_bearer:
        headers["Authorization"] = f"Bearer {x402.facilitator_bearer}"
    return headers


@dataclass(frozen=True)
class Setting:
    env: str
    field: str  # the attribute of its group's struct
    parse: Callable[[str], Any]
    default: str | Callable[[dict[str, Any]], str]  # a callable derives it from the values before (by env name)
    doc: str
    shown: str = ""  # the default as the README shows it, when it is derived or empty


@dataclass(frozen=True)
class Group:
    name: str  # the attribute of Settings ("" for the settings every process reads)
    struct: Any  # its msgspec struct
    title: str  # who reads it, for the README
    settings: tuple[Setting, ...]


SANDBOX_ACCESS_KEY_ID = "sandbox-access-key-id"
SANDBOX_ACCESS_KEY_SECRET = "sandbox-access-key-secret"
# Hardhat's public test account #1: the sandbox facilitator's ledger pays the gateway here. Not a real wallet.
SANDBOX_PAY_TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SANDBOX_TOKEN_SECRET = "sandbox-token-secret-not-for-production"


def _sandbox_or(sandbox: Callable[[dict[str, Any]], str], aliyun: Callable[[dict[str, Any]], str]) -> Any:
    """A default that differs in sandbox mode (the sandbox's documented key pair, its loopback endpoint)."""

    def default(values: dict[str, Any]) -> str:
        return sandbox(values) if values["SERVER402_UPSTREAM"] == "sandbox" else aliyun(values)

    return default


def _const(value: str) -> Callable[[dict[str, Any]], str]:
    return lambda values: value


def _sandbox_port(values: dict[str, Any]) -> str:
    return f"127.0.0.1:{values['SERVER402_SANDBOX_PORT']}"


LOCAL = Group(
    "local",
    LocalSettings,
    "Local processes (read only by `scripts/`: `make run`, the embedded Redis)",
    (
        Setting(
            "SERVER402_REDIS_PORT",
            "redis_port",
            _port,
            "6402",
            "Port of the embedded Redis `make run` starts when `REDIS_URL` is not set.",
        ),
        Setting("SERVER402_DATA_DIR", "data_dir", _path, ".data", "Where the embedded Redis keeps its AOF files."),
        Setting(
            "SERVER402_SANDBOX_PORT", "sandbox_port", _port, "8403", "Port of the sandbox upstream (loopback only)."
        ),
        Setting(
            "SERVER402_FACILITATOR_PORT",
            "facilitator_port",
            _port,
            "8404",
            "Port of the sandbox x402 facilitator `make run` starts (loopback only).",
        ),
    ),
)

COMMON = Group(
    "",
    Settings,  # its own fields, beside the groups
    "Every process",
    (
        Setting(
            "REDIS_URL",
            "redis_url",
            _redis_url,
            lambda v: f"redis://127.0.0.1:{v['SERVER402_REDIS_PORT']}/0",
            "The Redis to use; setting it makes `make run` skip the embedded one.",
            "`redis://127.0.0.1:6402/0`",
        ),
        Setting(
            "SERVER402_LOG_LEVEL",
            "log_level",
            _choice("debug", "info", "warning", "error"),
            "info",
            "`debug`, `info`, `warning` or `error`.",
        ),
        Setting(
            "SERVER402_LOG_FORMAT",
            "log_format",
            _choice("auto", "json", "console"),
            "auto",
            "`json` lines, `console` for people, or `auto` (console on a terminal, JSON otherwise).",
        ),
        Setting(
            "SERVER402_EVENT_LOOP",
            "event_loop",
            _choice("uvloop", "asyncio"),
            "uvloop",
            'The event loop of the API and the workers: `uvloop`, or `asyncio`\'s own (slower: README, "Performance").',
        ),
        Setting(
            "SERVER402_OPERATOR_FILE",
            "operator_file",
            _existing_file,
            "deploy/operator.toml",
            "The operator's terms (below): prices, payment terms, QPS limits, API-key requirements per service.",
        ),
    ),
)

SERVER = Group(
    "server",
    ServerSettings,
    "The API (`api/`)",
    (
        Setting("SERVER402_HOST", "host", _host, "127.0.0.1", "Address the API listens on."),
        Setting("SERVER402_PORT", "port", _port, "8402", "Port the API listens on."),
        Setting(
            "SERVER402_PUBLIC_URL",
            "public_url",
            _http_url,
            lambda v: f"http://{v['SERVER402_HOST']}:{v['SERVER402_PORT']}",
            "Base URL clients use (OpenAPI `servers`, links).",
            "`http://HOST:PORT`",
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
            "the previous response on it, is closed (idle keep-alive connections too).",
        ),
        Setting(
            "SERVER402_BODY_READ_TIMEOUT_S",
            "body_read_timeout_s",
            _positive_float,
            "30",
            "A request whose body has not fully arrived this long after its headers gets 408 (`request_timeout`) "
            "and its connection is closed.",
        ),
        Setting(
            "SERVER402_TRUSTED_PROXIES",
            "trusted_proxies",
            _networks,
            "",
            "Reverse proxies (CIDR list, e.g. `10.0.0.0/8`) whose `X-Forwarded-For` names the client; with none, the "
            "TCP peer is the client. Set it behind a proxy, or all callers share the proxy's limit.",
        ),
        Setting(
            "SERVER402_ALLOWED_ORIGINS",
            "allowed_origins",
            _origins,
            lambda v: _origin_of(v["SERVER402_PUBLIC_URL"]),
            "Browser origins (`scheme://host[:port]`, comma-separated) whose requests are served; any other `Origin` "
            "gets 403 (DNS-rebinding protection, below).",
            "the public URL's origin",
        ),
        Setting(
            "SERVER402_ANON_RATE",
            "anon_rate",
            _positive_float,
            "20",
            "Requests per second to `/api/*` and `/mcp` of one client address without a valid API key (IPv6: per "
            "/64; GCRA in Redis).",
        ),
        Setting(
            "SERVER402_ANON_BURST",
            "anon_burst",
            _positive_int,
            "40",
            "Of those, how many may come at once; above the limit the answer is 429 with `Retry-After`.",
        ),
    ),
)

UPSTREAM = Group(
    "upstream",
    UpstreamSettings,
    "The upstream (the workers' Alibaba Cloud client)",
    (
        Setting(
            "SERVER402_UPSTREAM",
            "mode",
            _choice("sandbox", "aliyun"),
            "sandbox",
            "`sandbox` (our Alibaba-compatible server on loopback) or `aliyun` (the real service; needs the key pair).",
        ),
        Setting(
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "access_key_id",
            _secret,
            _sandbox_or(_const(SANDBOX_ACCESS_KEY_ID), _const("")),
            "Access key id for the upstream; required for `aliyun`.",
            f"sandbox: `{SANDBOX_ACCESS_KEY_ID}`",
        ),
        Setting(
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            "access_key_secret",
            _secret,
            _sandbox_or(_const(SANDBOX_ACCESS_KEY_SECRET), _const("")),
            "Its secret; required for `aliyun`. Never logged.",
            f"sandbox: `{SANDBOX_ACCESS_KEY_SECRET}`",
        ),
        Setting("ALIBABA_CLOUD_REGION_ID", "region_id", _endpoint, "cn-shanghai", "Region of the facebody endpoint."),
        Setting(
            "SERVER402_FACEBODY_ENDPOINT",
            "facebody_endpoint",
            _endpoint,
            _sandbox_or(_sandbox_port, lambda v: f"facebody.{v['ALIBABA_CLOUD_REGION_ID']}.aliyuncs.com"),
            "facebody host[:port].",
            "`facebody.<region>.aliyuncs.com` (sandbox: `127.0.0.1:8403`)",
        ),
        Setting(
            "SERVER402_CLOUDAUTH_ENDPOINT",
            "cloudauth_endpoint",
            _endpoint,
            _sandbox_or(_sandbox_port, _const("cloudauth-intl.ap-southeast-1.aliyuncs.com")),
            "Cloudauth-intl host[:port] for FaceLivenessV2.",
            "`cloudauth-intl.ap-southeast-1.aliyuncs.com` (sandbox: `127.0.0.1:8403`)",
        ),
        Setting(
            "SERVER402_UPSTREAM_PROTOCOL",
            "protocol",
            _choice("http", "https"),
            _sandbox_or(_const("http"), _const("https")),
            "Protocol of upstream calls.",
            "`https` (sandbox: `http`)",
        ),
        Setting(
            "SERVER402_UPSTREAM_CONNECT_TIMEOUT_S",
            "connect_timeout_s",
            _positive_float,
            "3",
            "Connect timeout of one upstream call.",
        ),
        Setting(
            "SERVER402_UPSTREAM_READ_TIMEOUT_S",
            "read_timeout_s",
            _positive_float,
            "10",
            "Read timeout of one upstream call.",
        ),
        Setting(
            "SERVER402_UPSTREAM_CONCURRENCY",
            "concurrency",
            _positive_int,
            "1024",
            "Upstream calls in flight per worker process (each holds a socket; the worker raises its open-file "
            "limit to what the system allows).",
        ),
        Setting(
            "SERVER402_RATELIMIT_MARGIN",
            "ratelimit_margin",
            _margin,
            "1.02",
            "Upstream calls are spaced this much wider than 1/qps (1/margin of the limit is used): 1.02 absorbs 20 ms "
            "of difference between two calls' delays from their slot to their arrival upstream (a late wake-up: "
            "half of it). Raise it on a machine whose processes starve each other for longer.",
        ),
        Setting(
            "SERVER402_IMAGE_ALLOWED_NETWORKS",
            "image_allowed_networks",
            _networks,
            _sandbox_or(_const("127.0.0.0/8"), _const("")),  # the sandbox serves its sample images on loopback
            "Private or loopback networks image and video URLs of tool calls may still point at (CIDR list); others "
            "are refused (400).",
            "sandbox: `127.0.0.0/8`, else none",
        ),
    ),
)

JOBS = Group(
    "jobs",
    JobSettings,
    "Jobs (the workers, the API's waits, the health worker)",
    (
        Setting(
            "SERVER402_WORKER_MAX_JOBS",
            "worker_max_jobs",
            _positive_int,
            "1024",
            "Jobs in flight per worker process: the cap on calls one worker holds at once (a job waiting for its "
            "upstream answer costs a task and a socket, not a thread).",
        ),
        Setting(
            "SERVER402_WORKER_BATCH_JOBS",
            "worker_batch_jobs",
            _positive_int,
            "64",
            "Batch items a batch-lane worker runs at once (batch items have their own queue and worker "
            "process; add workers for more batch throughput).",
        ),
        Setting(
            "SERVER402_BATCH_NICE",
            "batch_nice",
            _niceness,
            "10",
            "CPU priority the batch lane's worker process gives up (its niceness, 0-19): a single call's work "
            "runs first when both want the CPU, a batch takes what is left.",
        ),
        Setting(
            "SERVER402_JOB_DEADLINE_S",
            "deadline_s",
            _positive_float,
            "120",
            "A job not finished this long after it was accepted, retries included, fails (or expires if it never ran).",
        ),
        Setting(
            "SERVER402_JOB_RETENTION_S",
            "retention_s",
            _positive_int,
            "3600",
            "How long finished jobs and results are kept; then `GET /api/jobs/{id}` answers 410.",
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
    ),
)

X402 = Group(
    "x402",
    X402Settings,
    "x402 (the API's facilitator and payment requirements)",
    (
        Setting(
            "SERVER402_X402_FACILITATOR_URL",
            "facilitator_url",
            _http_url,
            _sandbox_or(
                lambda v: f"http://127.0.0.1:{v['SERVER402_FACILITATOR_PORT']}", _const("https://x402.org/facilitator")
            ),
            "The x402 facilitator that verifies and settles (`/verify`, `/settle`).",
            "sandbox: `http://127.0.0.1:8404`, else `https://x402.org/facilitator`",
        ),
        Setting(
            "SERVER402_X402_FACILITATOR_TIMEOUT_S",
            "facilitator_timeout_s",
            _positive_float,
            "15",
            "How long a `/settle` is waited for; an answer that does not come in time leaves the payment `settling` "
            "(202) until the reconciler asks again, never 'nothing was charged'.",
        ),
        Setting(
            "SERVER402_X402_REQUIRE_PAYMENT_ID",
            "require_payment_id",
            _bool,
            "false",
            "Require x402's payment-identifier extension on every payment (400 without): a repeat of a payment is "
            "then always recognised, and a lost answer fetched again.",
        ),
        Setting(
            "SERVER402_X402_RECONCILE_GRACE_S",
            "reconcile_grace_s",
            _non_negative_float,
            "120",
            "How long past a payment's `validBefore` the reconciler still asks for a proof before it ends it "
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
            "A token sent as `Authorization: Bearer` to the facilitator (`/supported`, `/verify`, `/settle`). "
            "Never logged.",
        ),
        Setting(
            "SERVER402_X402_FACILITATOR_HEADERS",
            "facilitator_headers",
            _header_object,
            "",
            'Extra headers for the facilitator, a JSON object such as `{"X-Api-Key": "..."}`. Never logged.',
        ),
        Setting(
            "SERVER402_X402_NETWORK", "network", _caip2, "eip155:8453", "CAIP-2 network payments settle on (Base)."
        ),
        Setting(
            "SERVER402_X402_ASSET",
            "asset",
            _evm_address,
            "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            "Token contract payments are made in (USDC on Base).",
            "`0x8335...2913`",
        ),
        Setting(
            "SERVER402_X402_ASSET_NAME",
            "asset_name",
            str,
            "USD Coin",
            "The token's EIP-712 domain name (Base Sepolia USDC: `USDC`).",
        ),
        Setting("SERVER402_X402_ASSET_VERSION", "asset_version", str, "2", "The token's EIP-712 domain version."),
        Setting("SERVER402_X402_ASSET_DECIMALS", "asset_decimals", _positive_int, "6", "The token's decimals."),
        Setting(
            "SERVER402_X402_PAY_TO",
            "pay_to",
            _pay_to,
            _sandbox_or(_const(SANDBOX_PAY_TO), _const("")),
            "Address that receives payments; required for `aliyun`.",
            "sandbox: `0x7099...79C8`",
        ),
        Setting(
            "SERVER402_X402_TIMEOUT_S",
            "timeout_s",
            _positive_int,
            "300",
            "`maxTimeoutSeconds` of a payment requirement: how long a signed payment stays valid for us.",
        ),
    ),
)

PAYMENTS = Group(
    "payments",
    PaymentSettings,
    "Payments and tokens",
    (
        Setting(
            "SERVER402_TOKEN_SECRET",
            "token_secret",
            _secret,
            _sandbox_or(_const(SANDBOX_TOKEN_SECRET), _const("")),
            "HMAC key payment tokens and webhook secrets are derived from (tokens are never stored); required (32+ "
            "characters) for `aliyun`. Never logged.",
            "sandbox: a fixed dev value",
        ),
        Setting(
            "SERVER402_TOKEN_TTL_S", "token_ttl_s", _positive_int, "604800", "How long a bought token stays usable."
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
    ),
)

BATCHES = Group(
    "batches",
    BatchSettings,
    "Batches",
    (
        Setting(
            "SERVER402_BATCH_MAX_BYTES",
            "max_bytes",
            _positive_int,
            "33554432",
            "Largest `POST /api/batches` body (up to 10,000 items); larger bodies get 413.",
        ),
        Setting(
            "SERVER402_BATCH_DEADLINE_S",
            "deadline_s",
            _positive_float,
            "3600",
            "A batch item not finished this long after it was queued fails (or expires, given back, if it never ran).",
        ),
        Setting(
            "SERVER402_BATCH_WINDOW",
            "window",
            _positive_int,
            "256",
            "Items of one batch queued or running at once; each finished item queues the next.",
        ),
        Setting(
            "SERVER402_ANON_BATCH_FREE_ITEMS",
            "anon_free_items",
            _positive_int,
            "100",
            "Items of free services a batch may hold without an API key (paid items are bounded by what was paid).",
        ),
        Setting(
            "SERVER402_BATCH_MAX_DELIVERIES",
            "max_deliveries",
            _positive_int,
            "10001",
            "Webhook deliveries one batch may cause (its items times the job events asked for, plus batch.completed).",
        ),
    ),
)

WEBHOOKS = Group(
    "webhooks",
    WebhookSettings,
    "Webhooks",
    (
        Setting(
            "SERVER402_WEBHOOK_ALLOWED_NETWORKS",
            "allowed_networks",
            _networks,
            "",
            "Private or loopback networks webhooks may still be sent to (CIDR list, e.g. `127.0.0.0/8`).",
        ),
        Setting("SERVER402_WEBHOOK_TIMEOUT_S", "timeout_s", _positive_float, "10", "Timeout of one webhook delivery."),
        Setting(
            "SERVER402_WEBHOOK_RETRY_BASE_S",
            "retry_base_s",
            _positive_float,
            "5",
            "Wait before the first redelivery; each next one waits 4 times longer (5 s, 20 s, 80 s, ... up to 6 h).",
        ),
        Setting(
            "SERVER402_WEBHOOK_MAX_ATTEMPTS",
            "max_attempts",
            _positive_int,
            "8",
            "Delivery attempts before a webhook is given up (each one logged on its job or batch).",
        ),
    ),
)

# In reading order: a derived default reads only settings before it.
GROUPS: tuple[Group, ...] = (LOCAL, COMMON, SERVER, UPSTREAM, JOBS, X402, PAYMENTS, BATCHES, WEBHOOKS)
_GROUPS_BY_NAME = {group.name: group for group in GROUPS if group.name}
SETTINGS: tuple[Setting, ...] = tuple(setting for group in GROUPS for setting in group.settings)


def _check_declaration() -> None:
    """Each group's struct has exactly the fields its settings declare (so a setting cannot be declared and unread,
    or read and undeclared)."""
    for group in GROUPS:
        declared = [s.field for s in group.settings]
        fields = [f for f in group.struct.__struct_fields__ if f not in _GROUPS_BY_NAME]
        if sorted(declared) != sorted(fields):
            raise AssertionError(f"settings group {group.name or 'common'!r}: declared {declared}, struct {fields}")


_check_declaration()


def secret_settings() -> set[str]:
    """The environment variables whose values are secrets."""
    return {
        s.env
        for group in GROUPS
        for s in group.settings
        if group.struct.__annotations__.get(s.field) in (Secret, "Secret")
    }


def markdown_tables() -> str:
    """The README's settings tables, one per group, from the declaration (`python -m scripts.settings_doc`)."""
    out: list[str] = []
    for group in GROUPS:
        out += [f"**{group.title}**", "", "| variable | default | meaning |", "|---|---|---|"]
        for s in group.settings:
            default = s.shown or (f"`{s.default}`" if isinstance(s.default, str) and s.default else "none")
            out.append(f"| `{s.env}` | {default} | {s.doc} |")
        out.append("")
    return "\n".join(out)
