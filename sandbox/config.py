"""SandboxConfig: every setting of the sandbox, read from the environment here and nowhere else.

| variable | default | meaning |
|---|---|---|
| SERVER402_SANDBOX_HOST | 127.0.0.1 | listen address; must be loopback (127.0.0.0/8, ::1, localhost) |
| SERVER402_SANDBOX_PORT | 8403 | listen port (0: any free port, logged at start) |
| ALIBABA_CLOUD_ACCESS_KEY_ID | sandbox-access-key-id | the accepted access key id |
| ALIBABA_CLOUD_ACCESS_KEY_SECRET | sandbox-access-key-secret | its secret (set both or neither) |
| SERVER402_SANDBOX_QPS | 2 | default calls per second per (access key, action), like Alibaba's |
| SERVER402_TOOLS_FILE | shared/data/tools.json | the generated catalog data the action specs come from |
| SERVER402_SANDBOX_LOG_LEVEL | info | structlog level (warning silences the per-request lines) |

Invalid values stop the process at start with one message naming every bad variable.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

DEFAULT_ACCESS_KEY_ID = "sandbox-access-key-id"
DEFAULT_ACCESS_KEY_SECRET = "sandbox-access-key-secret"
DEFAULT_TOOLS_FILE = Path(__file__).resolve().parents[1] / "shared" / "data" / "tools.json"
LOG_LEVELS = ("debug", "info", "warning", "error")


class SandboxConfigError(ValueError):
    """One or more settings are invalid; the message lists each of them."""


class KeyPair(msgspec.Struct, frozen=True):
    access_key_id: str
    access_key_secret: str


class SandboxConfig(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8403
    key_pairs: tuple[KeyPair, ...] = (KeyPair(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),)
    qps: int = 2
    tools_file: Path = DEFAULT_TOOLS_FILE
    log_level: str = "info"
    max_clock_skew_s: float = 900.0
    nonce_ttl_s: float = 900.0
    fetch_timeout_s: float = 5.0
    hang_s: float = 3600.0

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise SandboxConfigError("invalid sandbox settings:\n  " + "\n  ".join(problems))

    @property
    def secrets(self) -> dict[str, str]:
        return {pair.access_key_id: pair.access_key_secret for pair in self.key_pairs}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxConfig:
        environ = os.environ if environ is None else environ
        problems: list[str] = []
        host = _get(environ, "SERVER402_SANDBOX_HOST", "127.0.0.1")
        port = _int(environ, "SERVER402_SANDBOX_PORT", 8403, problems)
        qps = _int(environ, "SERVER402_SANDBOX_QPS", 2, problems)
        key_id = _get(environ, "ALIBABA_CLOUD_ACCESS_KEY_ID", "")
        secret = _get(environ, "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
        if bool(key_id) != bool(secret):
            problems.append("ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET: set both or neither")
        pair = KeyPair(key_id or DEFAULT_ACCESS_KEY_ID, secret or DEFAULT_ACCESS_KEY_SECRET)
        tools_file = Path(_get(environ, "SERVER402_TOOLS_FILE", str(DEFAULT_TOOLS_FILE))).expanduser()
        log_level = _get(environ, "SERVER402_SANDBOX_LOG_LEVEL", "info").lower()
        try:
            config = cls(host=host, port=port, key_pairs=(pair,), qps=qps, tools_file=tools_file, log_level=log_level)
        except SandboxConfigError as exc:
            problems.extend(str(exc).splitlines()[1:])
            config = None
        if problems or config is None:
            raise SandboxConfigError("invalid sandbox settings:\n  " + "\n  ".join(p.strip() for p in problems))
        return config


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _problems(config: SandboxConfig) -> list[str]:
    problems = []
    if not is_loopback_host(config.host):
        problems.append(f"SERVER402_SANDBOX_HOST={config.host!r}: must be loopback (127.0.0.1, ::1, localhost)")
    if not 0 <= config.port <= 65535:
        problems.append(f"SERVER402_SANDBOX_PORT={config.port}: must be between 0 and 65535")
    if not 1 <= config.qps <= 100_000:
        problems.append(f"SERVER402_SANDBOX_QPS={config.qps}: must be between 1 and 100000")
    if config.log_level not in LOG_LEVELS:
        problems.append(f"SERVER402_SANDBOX_LOG_LEVEL={config.log_level!r}: must be one of {', '.join(LOG_LEVELS)}")
    if not config.key_pairs or any(not p.access_key_id or not p.access_key_secret for p in config.key_pairs):
        problems.append("key pairs: every access key needs a non-empty id and secret")
    return problems


def _get(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip()
    return value or default


def _int(environ: Mapping[str, str], name: str, default: int, problems: list[str]) -> int:
    raw = _get(environ, name, str(default))
    try:
        return int(raw)
    except ValueError:
        problems.append(f"{name}={raw!r}: must be an integer")
        return default
