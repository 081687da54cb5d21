"""The real processes of the Procfile, for tests that want them as a user runs them (`from stack import Stack`).

`Stack` starts the sandbox upstream, optionally the sandbox x402 facilitator, an invocation worker and the API
(`python -m ...`, JSON logs) on free loopback ports, each writing stdout and stderr to its own file, waits until
`/readyz` answers 200 (Redis and a worker alive) and stops them by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from scripts.embedded_redis import free_port
from scripts.readiness import NotReady, wait_ready

PROJECT_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


@dataclass
class Stack:
    directory: Path  # log files and the operator file
    env: dict[str, str]  # settings shared by every process
    facilitator: bool = False
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api_port: int = 0
    sandbox_port: int = 0
    facilitator_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def image(self, name: str = "face.jpg") -> str:
        return f"http://127.0.0.1:{self.sandbox_port}/_sandbox/images/{name}"

    def start(self) -> Stack:
        self.api_port, self.sandbox_port, self.facilitator_port = free_port(), free_port(), free_port()
        endpoint = f"127.0.0.1:{self.sandbox_port}"
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "SERVER402_LOG_FORMAT": "json",
            "SERVER402_PORT": str(self.api_port),
            "SERVER402_SANDBOX_PORT": str(self.sandbox_port),
            "SERVER402_FACEBODY_ENDPOINT": endpoint,
            "SERVER402_CLOUDAUTH_ENDPOINT": endpoint,
            "SERVER402_FACILITATOR_PORT": str(self.facilitator_port),
            "SERVER402_X402_FACILITATOR_URL": f"http://127.0.0.1:{self.facilitator_port}",
            **self.env,
        }
        self._spawn("sandbox", "sandbox")
        if self.facilitator:
            self._spawn("facilitator", "sandbox.facilitator")
        self._spawn("worker", "workers")
        self._spawn("api", "api")
        self._wait_ready()
        return self

    def _spawn(self, name: str, module: str) -> None:
        with (self.directory / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", module], cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def _wait_ready(self) -> None:
        try:
            wait_ready(f"{self.url}/readyz", self.processes, timeout_s=START_TIMEOUT_S)
        except NotReady as exc:
            why = (
                f"{', '.join(exc.exited)} exited at start"
                if exc.exited
                else f"the stack was not ready in {START_TIMEOUT_S} s"
            )
            raise AssertionError(f"{why}:\n{self.logs()[-4000:]}") from None

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        """Everything every process has written so far (stdout and stderr)."""
        return "\n".join((self.directory / f"{name}.log").read_text(errors="replace") for name in self.processes)
