"""The event loop each server402 process runs on (SERVER402_EVENT_LOOP): uvloop (libuv's loop, written in Cython),
or asyncio's own. Side by side on this machine, uvloop cost a 402 0.90 of its CPU and a worker 0.89-0.93 of its
CPU per paid call (README, "Libraries and why"). asyncio's loop stays one setting away, for a platform uvloop
does not build on and for measuring the difference."""

from __future__ import annotations

import asyncio

import uvloop


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A new loop of `kind`, as the setting says: "uvloop" or "asyncio"."""
    if kind == "uvloop":
        return uvloop.new_event_loop()
    if kind == "asyncio":
        return asyncio.new_event_loop()
    raise ValueError(f"no event loop {kind!r}: uvloop or asyncio")


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """What a loop is, for the logs: "uvloop" or "asyncio" (the package its type comes from)."""
    return type(loop).__module__.partition(".")[0]
