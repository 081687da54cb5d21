"""python -m sandbox: serve the sandbox upstream on loopback until SIGINT/SIGTERM (settings: sandbox/config.py)."""

from __future__ import annotations

import asyncio
import sys

import structlog
from aiohttp import web

from sandbox.app import create_app
from sandbox.catalog import CatalogError
from sandbox.config import SandboxConfig, SandboxConfigError
from sandbox.signals import wait_for_stop_signal
from shared.logging import configure_logging

log = structlog.get_logger("sandbox")


async def serve(config: SandboxConfig) -> None:
    runner = web.AppRunner(create_app(config), handler_cancellation=True, access_log=None, shutdown_timeout=5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else config.port
        key_ids = [f"{pair.access_key_id[:4]}…" for pair in config.key_pairs]
        log.info(
            "sandbox.started",
            url=f"http://{config.host}:{port}",
            access_keys=key_ids,
            qps=config.qps,
            tools_file=str(config.tools_file),
        )
        await wait_for_stop_signal()
    finally:
        await runner.cleanup()
        log.info("sandbox.stopped")


def main() -> int:
    try:
        config = SandboxConfig.from_env()
    except SandboxConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    try:
        asyncio.run(serve(config))
    except CatalogError as exc:
        log.error("sandbox.cannot_start", reason=str(exc))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
