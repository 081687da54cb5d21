"""Settings: every knob of server402, read from the environment in one place.

`Settings.from_env(os.environ)` is the only reader of the environment in `api/`, `workers/` and `shared/`.
Each setting is declared once in `SETTINGS` (name, parser, default, meaning); the README's settings table is
checked against that list by a test, so the two cannot drift apart. Invalid values stop the process at start
with one message that names every bad variable.
"""

from __future__ import annotations

import ipaddress
import os
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
    worker_max_jobs: int
    job_deadline_s: float
    job_retention_s: int
    retry_base_s: float
    retry_cap_s: float
    wait_default_s: float
    wait_max_s: float

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
    if values.get("wait_default_s", 0) > values.get("wait_max_s", 60):
        problems.append("SERVER402_WAIT_DEFAULT_S must not exceed SERVER402_WAIT_MAX_S")
    return problems


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
)


def _sandbox_or(value: str) -> Callable[[dict[str, Any]], str]:
    """A default that differs in sandbox mode (the sandbox's documented key pair, its loopback endpoint)."""

    def default(values: dict[str, Any]) -> str:
        return SANDBOX_DEFAULTS[value](values) if values["upstream"] == "sandbox" else ALIYUN_DEFAULTS[value](values)

    return default


SANDBOX_ACCESS_KEY_ID = "sandbox-access-key-id"
SANDBOX_ACCESS_KEY_SECRET = "sandbox-access-key-secret"

SANDBOX_DEFAULTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "access_key_id": lambda v: SANDBOX_ACCESS_KEY_ID,
    "access_key_secret": lambda v: SANDBOX_ACCESS_KEY_SECRET,
    "facebody_endpoint": lambda v: f"127.0.0.1:{v['sandbox_port']}",
    "cloudauth_endpoint": lambda v: f"127.0.0.1:{v['sandbox_port']}",
    "protocol": lambda v: "http",
}
ALIYUN_DEFAULTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "access_key_id": lambda v: "",
    "access_key_secret": lambda v: "",
    "facebody_endpoint": lambda v: f"facebody.{v['region_id']}.aliyuncs.com",
    "cloudauth_endpoint": lambda v: "cloudauth-intl.ap-southeast-1.aliyuncs.com",
    "protocol": lambda v: "https",
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
)

JOB_SETTINGS: tuple[Setting, ...] = (
    Setting("SERVER402_WORKER_MAX_JOBS", "worker_max_jobs", _positive_int, "512", "Jobs in flight per worker."),
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
)

SETTINGS: tuple[Setting, ...] = (*CORE_SETTINGS, *UPSTREAM_SETTINGS, *JOB_SETTINGS)
