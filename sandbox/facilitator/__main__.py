"""python -m sandbox.facilitator: serve the local x402 facilitator on 127.0.0.1 until SIGINT/SIGTERM.

Settings: sandbox/facilitator/config.py. The start line names the URL, the network, the token, the demo wallet (its
public test key is DEMO_WALLET_KEY in config.py) and every wallet funded with 100 USDC.
"""

from __future__ import annotations

import asyncio
import sys

import structlog
from aiohttp import web

from sandbox.facilitator.app import create_facilitator_app
from sandbox.facilitator.config import (
    DEMO_PAY_TO,
    DEMO_WALLET_ADDRESS,
    FACILITATOR_ADDRESS,
    STARTING_BALANCE,
    FacilitatorConfig,
    FacilitatorConfigError,
)
from sandbox.signals import wait_for_stop_signal
from shared.logging import configure_logging

log = structlog.get_logger("facilitator")


async def serve(config: FacilitatorConfig) -> None:
    runner = web.AppRunner(
        create_facilitator_app(config), handler_cancellation=True, access_log=None, shutdown_timeout=5
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
        port = runner.addresses[0][1] if runner.addresses else config.port
        log.info(
            "facilitator.started",
            url=f"http://{config.host}:{port}",
            network=config.network,
            asset=config.asset,
            facilitator=FACILITATOR_ADDRESS,
            demo_wallet=DEMO_WALLET_ADDRESS,
            demo_pay_to=DEMO_PAY_TO,
            funded_wallets=list(config.funded_wallets),
            balance_each=STARTING_BALANCE,
        )
        await wait_for_stop_signal()
    finally:
        await runner.cleanup()
        log.info("facilitator.stopped")


def main() -> int:
    try:
        config = FacilitatorConfig.from_env()
    except FacilitatorConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
