"""Redis commands of one process that start in the same turn of its event loop share one round trip.

On this kind of machine a round trip through redis-py costs its caller far more than the command costs Redis
(about 70 µs of CPU for a PING with 64 callers at once, 7 µs a command in a pipeline of 64: the send, the poll and
the read are per round trip, not per command). `call` sends the first command of a turn at once, as redis-py
would, and queues the others of that turn; at the end of the turn they go together on one connection (not a
transaction: each command is what it would have been alone), and each caller gets its own reply, as it arrives:
- an error reply (a Lua error, OOM, READONLY) is its command's caller's alone;
- an argument redis-py cannot encode fails its caller alone, before anything is sent;
- a caller that gave up (cancelled, timed out) before its command is written, even while the batch waited for a
  connection from the pool, sends nothing; one that gives up after is as a caller cancelled while its command
  was on the wire: it ran;
- when the connection fails, the callers whose replies had arrived keep them, and each of the others gets its
  own copy of the failure (the connection is dropped, so no late reply reaches anyone);
- nothing is sent twice: the batch is written once, without redis-py's retry.
Order: the commands of one batch run in the order they came; the first of a turn, and batches of more than
MAX_PIPELINE, go on other connections and may run before or after it.

Only commands whose reply redis-py passes on as it is (no response callback: FCALL, INCRBY, ...) share a round
trip; others, and clients that are pipelines or hold one connection, go at once. Used by `shared.lua.Function`
(every script call of the API and the workers).
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

MAX_PIPELINE = 256

_Queued = tuple[tuple[Any, ...], "asyncio.Future[Any]"]
# (loop, client) by their ids -> the two (held, so their ids cannot be taken by others while the entry exists) and
# the commands of this turn after its first
_turns: dict[tuple[int, int], tuple[asyncio.AbstractEventLoop, Any, list[_Queued]]] = {}
_running: set[asyncio.Task[None]] = set()


async def call(redis: Any, *command: Any) -> Any:
    """`redis.execute_command(*command)`, sharing a round trip with the calls of the same turn."""
    if not _shareable(redis, command):
        return await redis.execute_command(*command)
    loop = asyncio.get_running_loop()
    key = (id(loop), id(redis))
    entry = _turns.get(key)
    if entry is None or entry[0] is not loop or entry[1] is not redis:  # the first of this turn goes at once
        _turns[key] = (loop, redis, [])
        loop.call_soon(_flush, key)
        return await redis.execute_command(*command)
    answer: asyncio.Future[Any] = loop.create_future()
    entry[2].append((command, answer))
    return await answer


def _shareable(redis: Any, command: tuple[Any, ...]) -> bool:
    if isinstance(redis, Pipeline) or getattr(redis, "single_connection_client", False):
        return False
    return bool(command) and command[0] not in getattr(redis, "response_callbacks", {})


def _flush(key: tuple[int, int]) -> None:
    entry = _turns.pop(key, None)
    if entry is None:
        return
    _, redis, queued = entry
    for start in range(0, len(queued), MAX_PIPELINE):
        task = asyncio.ensure_future(_send(redis, queued[start : start + MAX_PIPELINE]))
        _running.add(task)
        task.add_done_callback(_running.discard)


async def _send(redis: Any, queued: list[_Queued]) -> None:
    if not any(not answer.done() for _, answer in queued):
        return
    pool, connection = redis.connection_pool, None
    try:
        connection = await pool.get_connection()
        await _exchange(connection, queued)
    except asyncio.CancelledError:  # this task cancelled (the loop closing): so are its callers
        for _, answer in queued:
            answer.cancel()
        raise
    except Exception as exc:  # noqa: BLE001 - no connection, or it failed (redis-py dropped it): each caller's own
        for _, answer in queued:
            if not answer.done():
                answer.set_exception(_copy(exc))
    finally:
        if connection is not None:
            await pool.release(connection)


async def _exchange(connection: Any, queued: list[_Queued]) -> None:
    """Writes the commands of the callers still waiting, then reads and hands out each reply as it arrives."""
    packed: list[bytes] = []
    waiting: list[asyncio.Future[Any]] = []
    for command, answer in queued:
        if answer.done():  # gave up before anything was written
            continue
        try:
            packed += connection.pack_command(*command)
        except Exception as exc:  # noqa: BLE001 - (redis-py's DataError for an argument it cannot encode)
            answer.set_exception(exc)
            continue
        waiting.append(answer)
    if not waiting:
        return
    await connection.send_packed_command(packed, check_health=False)
    for answer in waiting:
        try:
            reply = await connection.read_response()
        except ResponseError as exc:  # an error reply: this command's alone, the rest read on
            reply = exc
        if answer.done():
            continue
        if isinstance(reply, ResponseError):
            answer.set_exception(reply)
        else:
            answer.set_result(reply)


def _copy(exc: Exception) -> Exception:
    """An exception like `exc` for one caller (each waiter raises its own; traceback frames are not shared)."""
    if isinstance(exc, OSError) and not isinstance(exc, RedisConnectionError):
        exc = RedisConnectionError(f"Error talking to Redis: {exc}")
    try:
        copy = type(exc)(*exc.args)
    except Exception:  # noqa: BLE001 - a type that cannot be rebuilt from its args: the same one, then
        return exc
    copy.__cause__ = exc
    return copy
