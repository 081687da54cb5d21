"""`python -m api`: read the settings, configure logging, serve the API."""

from __future__ import annotations

import sys

import structlog
from aiohttp import web

from api.app import create_app
from shared.config import ConfigError, Settings
from shared.eventloop import loop_name, new_event_loop
from shared.logging import configure_logging


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"server402 api: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except ConfigError as exc:
        print(f"server402 api: {exc}", file=sys.stderr)
        return 2
    loop = new_event_loop(settings.event_loop)
    structlog.get_logger("api").info(
        "api listening",
        url=settings.server.public_url,
        catalog=f"{settings.server.public_url}/api/catalog",
        event_loop=loop_name(loop),
    )
    web.run_app(app, host=settings.server.host, port=settings.server.port, print=None, access_log=None, loop=loop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
