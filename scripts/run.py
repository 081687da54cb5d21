"""`make run`: start every process of the Procfile with honcho, wait until the API is ready, print where to look.

Starts the embedded Redis too unless `REDIS_URL` is set. Ctrl-C stops every process it started (honcho passes
the signal on and waits for them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from shared.config import PROJECT_ROOT, ConfigError, Settings

READY_TIMEOUT_S = 60.0
SAFE_ENV = {
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost,::1",
    "no_proxy": "127.0.0.1,localhost,::1",
    "PYTHONUNBUFFERED": "1",
}


def procfile_names(procfile: Path) -> list[str]:
    lines = (raw.strip() for raw in procfile.read_text().splitlines())
    return [line.split(":", 1)[0].strip() for line in lines if line and not line.startswith("#") and ":" in line]


DEMO_OPERATOR_FILE = "deploy/operator.demo.toml"


def child_env(settings: Settings, external_redis: bool) -> dict[str, str]:
    env = {**os.environ, **SAFE_ENV}
    env.setdefault("SERVER402_OPERATOR_FILE", DEMO_OPERATOR_FILE)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if not external_redis:
        env["REDIS_URL"] = settings.redis_url
    return env


def wait_ready(url: str, honcho: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and honcho.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def banner(settings: Settings, external_redis: bool) -> str:
    url = settings.server.public_url
    upstream = f"sandbox at {settings.local.sandbox_url}" if settings.upstream.mode == "sandbox" else "Alibaba Cloud"
    redis_where = "external (REDIS_URL)" if external_redis else f"embedded, data in {settings.local.data_dir}"
    return "\n".join(
        [
            "",
            "server402 is running. Ctrl-C stops everything.",
            f"  catalog   {url}/api/catalog",
            f"  search    {url}/api/catalog/search?q=人脸比对",
            f"  service   {url}/api/services/face-detection",
            f"  openapi   {url}/openapi.json",
            f"  web       {url}/   (catalog)   {url}/status   (dashboard)",
            f"  mcp       {url}/mcp   (MCP over streamable HTTP)",
            f"  status    {url}/api/status   metrics {url}/metrics",
            f"  health    {url}/healthz   {url}/readyz",
            f"  redis     {redis_where}",
            f"  upstream  {upstream}",
            "",
            "Call a tool end to end (face-detection is free in the demo terms):",
            f"  curl -s -X POST {url}/api/tools/face-detection -H 'Content-Type: application/json' \\",
            f'       -d \'{{"ImageURL": "{settings.local.sandbox_url}/_sandbox/images/face.jpg"}}\'',
            "",
            "Pay for a call with the demo wallet (the official x402 client, 0.20 test USDC on the sandbox ledger):",
            "  .venv/bin/python -m scripts.pay_demo face-attribute-recognition",
            "",
            "The command line (calls, batches with a progress bar, jobs; see docs/cli.md):",
            f"  .venv/bin/server402 --url {url} call face-detection \\",
            f"      ImageURL={settings.local.sandbox_url}/_sandbox/images/face.jpg",
            "",
        ]
    )


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    external_redis = bool(os.environ.get("REDIS_URL"))
    procfile = PROJECT_ROOT / "Procfile"
    skipped = {"redis"} if external_redis else set()
    if settings.upstream.mode != "sandbox":
        skipped.add("sandbox")
    if os.environ.get("SERVER402_X402_FACILITATOR_URL"):
        skipped.add("facilitator")
    names = [name for name in procfile_names(procfile) if name not in skipped]
    command = [sys.executable, "-m", "honcho", "-f", str(procfile), "-d", str(PROJECT_ROOT), "start", *names]
    honcho = subprocess.Popen(command, env=child_env(settings, external_redis))
    try:
        if wait_ready(settings.server.public_url, honcho):
            print(banner(settings, external_redis), flush=True)
        elif honcho.poll() is None:
            print(f"make run: the API did not become ready at {settings.server.public_url}/readyz", file=sys.stderr)
        return honcho.wait()
    except KeyboardInterrupt:
        return honcho.wait()


if __name__ == "__main__":
    raise SystemExit(main())
