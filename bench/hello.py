"""The baseline server: a bare aiohttp app answering `{"hello": "world"}` on every GET /, run as its own process
(no access log), on asyncio's default loop (the issue's baseline) or, with `--loop uvloop`, on the loop
`python -m api` runs on by default (SERVER402_EVENT_LOOP).

    .venv/bin/python -m bench.hello --port 8500 [--loop uvloop]
"""

from __future__ import annotations

import argparse

from aiohttp import web

from shared.eventloop import new_event_loop


async def hello(_: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=new_event_loop(args.loop))


if __name__ == "__main__":
    main()
