"""The baseline server: a bare aiohttp app answering `{"hello": "world"}` on every GET /, run as its own process
the way `python -m api` runs (default asyncio loop, no access log).

    .venv/bin/python -m bench.hello --port 8500
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def hello(_: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
