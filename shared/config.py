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
        if problems:
            raise ConfigError("invalid settings:\n  " + "\n  ".join(problems))
        return cls(**values)


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


def _loopback_or_any_host(raw: str) -> str:
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


SETTINGS: tuple[Setting, ...] = (
    Setting("SERVER402_HOST", "host", _loopback_or_any_host, "127.0.0.1", "Address the API listens on."),
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
