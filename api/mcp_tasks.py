"""MCP tasks: a long tool call as a durable, pollable, cancellable task. A task is its job: the task id is the job
id, its state is the job's, only the job's owner sees it, and cancelling it is cancelling the job.

The task statuses of both protocol versions, their methods, the cancel rules and the task index's key:
docs/architecture.md, "MCP" and "Redis".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

import structlog
from aiohttp import web

from api import appkeys, errors
from api.identity import job_readers
from api.mcp_protocol import INVALID_PARAMS, MISSING_CLIENT_CAPABILITY, RpcError, ToolCall
from api.mcp_results import describe, job_result
from shared.clock import iso
from shared.jobs import ANONYMOUS, TERMINAL, JobRecord, job_created_ms, now_ms

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
RELATED_TASK_META = "io.modelcontextprotocol/related-task"
IMMEDIATE_RESPONSE_META = "io.modelcontextprotocol/model-immediate-response"
HANDSHAKE_CAPABILITY: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
POLL_INTERVAL_MS = 1000
LIST_PAGE = 50
RESULT_RECHECK_S = 5.0  # tasks/result re-reads its job this often, sees a client gone, keeps an SSE stream alive
STILL_WORKING = -32001  # a server error of our own: tasks/result waited its longest and the task goes on
STILL_WORKING_MESSAGE = "the task is still working: call tasks/result again, or poll tasks/get"
INDEX_PREFIX = "s402:mcp:tasks:"
NOT_FOUND = "Failed to retrieve task: Task not found"

log = structlog.get_logger("api.mcp.tasks")


def index_key(owner: str) -> str:
    return INDEX_PREFIX + owner


def wants_task(call: ToolCall) -> bool:
    """Whether a `tools/call` is to be answered as a task: 2025-11-25 asks with `params.task`; 2026-07-28 with the
    extension declared in the request's client capabilities (a legacy `task` param there is ignored)."""
    if call.envelope.modern:
        return TASKS_EXTENSION in call.envelope.extensions
    return isinstance(call.params.get("task"), dict)


async def created(call: ToolCall, record: JobRecord, meta: dict[str, Any]) -> dict[str, Any]:
    """The answer to a `tools/call` whose job was just created (durably: a `tasks/get` finds it at once)."""
    if record.owner != ANONYMOUS:
        await _index(call.request, record)
    task = await task_view(call, record)
    structlog.contextvars.bind_contextvars(mcp_outcome="task", job_id=record.id)
    if call.envelope.modern:
        return {"resultType": "task", **task, **({"_meta": meta} if meta else {})}
    immediate = f"The call runs as task {record.id}: tasks/get polls it, tasks/result waits for its result."
    return {"task": task, "_meta": {IMMEDIATE_RESPONSE_META: immediate, **meta}}


async def _index(request: web.Request, record: JobRecord) -> None:
    settings = request.app[appkeys.SETTINGS]
    # as long as the job can last: settling (the payment's window, then the reconciler's grace), its deadline
    # (from when it is queued), then its retention
    longest_s = settings.x402.timeout_s + settings.x402.reconcile_grace_s + settings.jobs.deadline_s
    kept_ms = int(settings.jobs.retention_s + longest_s + 60) * 1000
    key = index_key(record.owner)
    async with request.app[appkeys.REDIS].pipeline(transaction=False) as pipe:
        pipe.zadd(key, {record.id: record.created_at})
        pipe.zremrangebyscore(key, "-inf", now_ms() - kept_ms)
        pipe.pexpire(key, kept_ms)
        await pipe.execute()


# ---------------------------------------------------------------- the task as either version shows it


def task_status(record: JobRecord, *, modern: bool) -> str:
    if record.status not in TERMINAL:
        return "working"
    if record.status == "succeeded":
        return "completed"
    if record.status == "canceled":
        return "cancelled"
    return "completed" if modern else "failed"


async def task_view(call: ToolCall, record: JobRecord) -> dict[str, Any]:
    modern = call.envelope.modern
    ttl_ms = call.request.app[appkeys.SETTINGS].jobs.retention_s * 1000  # kept at least this long after it was created
    updated = max(record.created_at, record.started_at or 0, record.finished_at or 0)
    return {
        "taskId": record.id,
        "status": task_status(record, modern=modern),
        "statusMessage": await _message(call.request, record),
        "createdAt": iso(record.created_at),
        "lastUpdatedAt": iso(updated),
        ("ttlMs" if modern else "ttl"): ttl_ms,
        ("pollIntervalMs" if modern else "pollInterval"): POLL_INTERVAL_MS,
    }


async def _message(request: web.Request, record: JobRecord) -> str:
    if record.status not in TERMINAL:
        where = await describe(request, record)
        if record.cancel:
            return f"{where}; cancel requested: a call already made upstream may still finish (and is then charged)"
        return where
    if record.status == "succeeded":
        return "the call succeeded"
    if record.status == "canceled":
        return "canceled" + (": the paid call was given back" if record.refunded else "")
    error = record.job_error()
    return error.message if error is not None else f"the job {record.status}"


# ---------------------------------------------------------------- methods


async def get_task(call: ToolCall) -> dict[str, Any]:
    _require_extension(call)
    record = await _owned(call)
    task = await task_view(call, record)
    if call.envelope.modern and record.status in TERMINAL and record.status != "canceled":
        task["result"] = await job_result(call.request, record)
    return task


async def task_result(call: ToolCall) -> dict[str, Any]:
    """2025-11-25: the call's result once the task has ended (blocking until then)."""
    record = await _until_done(call, await _owned(call))
    result = await job_result(call.request, record)
    result["_meta"] = {**result.get("_meta", {}), RELATED_TASK_META: {"taskId": record.id}}
    return result


async def _until_done(call: ToolCall, record: JobRecord) -> JobRecord:
    """The job once it has ended; at most SERVER402_WAIT_MAX_S, and no longer than the client is there."""
    waiter, stream, request = call.request.app[appkeys.WAITER], call.stream, call.request
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.app[appkeys.SETTINGS].jobs.wait_max_s
    reported: str | None = None
    while True:
        if stream is not None:
            task = await task_view(call, record)
            if task["statusMessage"] != reported:
                await stream.notify("notifications/tasks/status", task)
                reported = task["statusMessage"]
            else:
                await stream.keepalive()
        if record.status in TERMINAL:
            return record
        remaining = deadline - loop.time()
        if remaining <= 0 or _gone(request) or (stream is not None and stream.closed):
            raise RpcError(STILL_WORKING, STILL_WORKING_MESSAGE, {"taskId": record.id, "status": "working"})
        latest = await waiter.wait(record.id, min(remaining, RESULT_RECHECK_S), current=record)
        if latest is None:
            raise RpcError(INVALID_PARAMS, NOT_FOUND)
        record = latest


def _gone(request: web.Request) -> bool:
    """The client hung up (aiohttp leaves a handler running after that unless told otherwise)."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def list_tasks(call: ToolCall) -> dict[str, Any]:
    """2025-11-25: the tasks of the caller's key and presented payment tokens, oldest first."""
    after = _decode_cursor(call.params.get("cursor"))
    owners = sorted(owner for owner in await _readers(call) if owner != ANONYMOUS)
    redis = call.request.app[appkeys.REDIS]
    entries: list[tuple[int, str]] = []
    for owner in owners:
        key = index_key(owner)
        ties = await redis.zcount(key, after[0], after[0]) if after else 0  # those sharing the cursor's ms
        rows = await redis.zrangebyscore(
            key, after[0] if after else "-inf", "+inf", start=0, num=LIST_PAGE + ties + 1, withscores=True
        )
        entries.extend((int(score), member.decode()) for member, score in rows)
    entries = sorted({entry for entry in entries if after is None or entry > after})
    page, more = entries[:LIST_PAGE], len(entries) > LIST_PAGE
    jobs = call.request.app[appkeys.JOBS]
    tasks = []
    for _, job_id in page:
        record = await jobs.get(job_id)
        if record is not None:  # else expired since it was listed
            tasks.append(await task_view(call, record))
    result: dict[str, Any] = {"tasks": tasks}
    if more and page:
        result["nextCursor"] = _encode_cursor(page[-1])
    return result


async def cancel_task(call: ToolCall) -> dict[str, Any]:
    _require_extension(call)
    record = await _owned(call)
    if record.status in TERMINAL:
        if call.envelope.modern:
            return {}
        raise RpcError(INVALID_PARAMS, f"Cannot cancel task: already in terminal status ({record.status})")
    outcome = await call.request.app[appkeys.JOBS].cancel(record)
    structlog.contextvars.bind_contextvars(job_id=record.id, cancel=outcome)
    if outcome == "missing":
        raise RpcError(INVALID_PARAMS, NOT_FOUND)
    if outcome == "settling":  # not acknowledged: nothing would remember it once the payment settles
        raise RpcError(INVALID_PARAMS, "Cannot cancel task: its x402 payment is still settling; cancel it once queued")
    if call.envelope.modern:
        return {}  # cooperative: the next tasks/get shows what became of it
    if outcome not in ("canceled", "cancel_requested"):
        raise RpcError(INVALID_PARAMS, f"Cannot cancel task: already in terminal status ({outcome})")
    current = await call.request.app[appkeys.JOBS].get(record.id) or record
    return await task_view(call, current)


async def update_task(call: ToolCall) -> dict[str, Any]:
    """2026-07-28: no task here asks for input, so input responses change nothing (the task must exist)."""
    _require_extension(call)
    await _owned(call)
    return {}


# ---------------------------------------------------------------- helpers


def _require_extension(call: ToolCall) -> None:
    if call.envelope.modern and TASKS_EXTENSION not in call.envelope.extensions:
        raise RpcError(
            MISSING_CLIENT_CAPABILITY,
            f"tasks methods need the {TASKS_EXTENSION} extension in the client capabilities",
            {"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}},
        )


async def _readers(call: ToolCall) -> frozenset[str]:
    try:
        return await job_readers(call.request)
    except errors.Server402Error as exc:  # an API key that does not authenticate, or over its rate
        raise RpcError(INVALID_PARAMS, exc.message, {"code": exc.code}) from None


async def _owned(call: ToolCall) -> JobRecord:
    """The task named by params.taskId, when the caller may see it (else the same answer as for no task)."""
    task_id = call.params.get("taskId")
    if not isinstance(task_id, str):
        raise RpcError(INVALID_PARAMS, "params.taskId must be a string")
    structlog.contextvars.bind_contextvars(job_id=task_id[:64])
    readers = await _readers(call)  # first: a bad key is refused alike whether or not the task exists
    record = await call.request.app[appkeys.JOBS].get(task_id) if job_created_ms(task_id) is not None else None
    if record is None or record.owner not in readers:
        raise RpcError(INVALID_PARAMS, NOT_FOUND)
    return record


def _encode_cursor(entry: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{entry[0]}:{entry[1]}".encode()).decode()


def _decode_cursor(cursor: Any) -> tuple[int, str] | None:
    if cursor is None:
        return None
    try:
        score, _, job_id = base64.urlsafe_b64decode(str(cursor).encode()).decode().partition(":")
        if job_created_ms(job_id) is None:
            raise ValueError(job_id)
        return int(score), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise RpcError(INVALID_PARAMS, "invalid cursor") from None
