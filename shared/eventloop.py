"""The event loop each server402 process runs on (SERVER402_EVENT_LOOP): uvloop (libuv's loop, written in Cython),
or asyncio's own. On this machine uvloop cost a worker 0.91-0.93 of its CPU per paid call and the API 0.94 of its
CPU per 402, side by side (README, "Performance"). asyncio's loop stays one setting away, for a platform uvloop
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
