"""Faults survived, with real processes killed by pid (tests/processes.py): a worker SIGKILLed in the middle of a
paid call, Redis SIGKILLed and restarted under load (AOF, appendfsync always), an upstream answering 5xx to every
call of a service, and the API SIGKILLed and restarted while clients long-poll. Each checks what a user sees: no
job lost or run twice, every paid call charged exactly once or given back, and clean errors meanwhile."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from processes import Deployment
from support import PIPELINE_KEY_ID, PIPELINE_SECRET
from x402.http.clients.httpx import x402HttpxClient
from x402_support import buyer

from sandbox.config import KeyPair, SandboxConfig
from sandbox.facilitator.testing import RunningFacilitator
from sandbox.testing import RunningSandbox, run_sandbox
from scripts.embedded_redis import EmbeddedRedis
from shared import keys
from shared.config import Settings
from workers.settings import attempt_timeout_s

PAID, FREE = "face-detection", "facial-expression-recognition"
OPERATOR_TERMS = f"""
[defaults]
amountCents = 20
qps = 1000

[services.{FREE}]
amountCents = 0
"""
CLIENT_TIMEOUT_S = 10.0
POLL_S = 0.05
CONDITION_TIMEOUT_S = 30.0
RUNNING = ("queued", "running")
T = TypeVar("T")


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(SandboxConfig(key_pairs=(KeyPair(PIPELINE_KEY_ID, PIPELINE_SECRET),), qps=1000)) as up:
        yield up


@pytest.fixture
async def deployment(
    tmp_path: Path, sandbox: RunningSandbox, facilitator: RunningFacilitator
) -> AsyncIterator[Deployment]:
    operator = tmp_path / "operator.toml"
    operator.write_text(OPERATOR_TERMS)
    redis_server = EmbeddedRedis(tmp_path / "redis", appendfsync="always").start()
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": PIPELINE_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": PIPELINE_SECRET,
        "SERVER402_FACEBODY_ENDPOINT": sandbox.endpoint,
        "SERVER402_CLOUDAUTH_ENDPOINT": sandbox.endpoint,
        "SERVER402_OPERATOR_FILE": str(operator),
        "SERVER402_X402_FACILITATOR_URL": facilitator.url,
        "SERVER402_RETRY_BASE_S": "0.02",
        "SERVER402_RETRY_CAP_S": "0.1",
        "SERVER402_LOG_LEVEL": "warning",
        "SERVER402_LOG_FORMAT": "json",
    }
    running = Deployment(tmp_path, redis_server, env)
    try:
        yield running
    finally:
        await running.close()
        redis_server.stop()
        print(running.logs())  # shown with the failure report


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)) as session:
        yield session


# ---------------------------------------------------------------- helpers


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = CONDITION_TIMEOUT_S) -> None:
    """Poll a condition of another process (no event to await), for at most `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await condition():
        assert loop.time() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(POLL_S)


async def buy(deployment: Deployment, calls: int) -> dict[str, Any]:
    """A bundle token for the paid service, bought with the official x402 client through the facilitator."""
    wallet = buyer()
    wallet.set_spend_controls(False)  # a bundle may cost more than the client's default USD 1 cap
    async with x402HttpxClient(wallet, base_url=deployment.api_url, timeout=30) as client:
        response = await client.post("/api/payments", json={"serviceId": PAID, "calls": calls})
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


def image(sandbox: RunningSandbox) -> dict[str, str]:
    return {"ImageURL": sandbox.image("face.jpg")}


async def call(
    http: aiohttp.ClientSession, deployment: Deployment, body: Any, tool: str = PAID, **headers: str
) -> tuple[int, Any]:
    async with http.post(f"{deployment.api_url}/api/tools/{tool}", json=body, headers=headers) as response:
        return response.status, await response.json()


async def job(http: aiohttp.ClientSession, deployment: Deployment, job_id: str, wait: float, **headers: str) -> Any:
    url = f"{deployment.api_url}/api/jobs/{job_id}"
    async with http.get(url, params={"wait": str(wait)}, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def finished(http: aiohttp.ClientSession, deployment: Deployment, job_id: str, **headers: str) -> Any:
    """The job once it has finished: long polls, sent again while it runs, for at most CONDITION_TIMEOUT_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONDITION_TIMEOUT_S
    while (view := await job(http, deployment, job_id, wait=CLIENT_TIMEOUT_S / 2, **headers))["status"] in RUNNING:
        assert loop.time() < deadline, view
    return view


async def payment_of(http: aiohttp.ClientSession, deployment: Deployment, bought: dict[str, Any]) -> Any:
    url = f"{deployment.api_url}/api/payments/{bought['paymentId']}"
    async with http.get(url, headers={"X-Payment-Token": bought["token"]}) as response:
        assert response.status == 200
        return await response.json()


async def ledger_of(deployment: Deployment, payment_id: str) -> list[dict[str, str]]:
    entries = await deployment.redis.xrange(keys.LEDGER)
    rows = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
    return [row for row in rows if row["paymentId"] == payment_id]


async def upstream_calls(sandbox: RunningSandbox, action: str) -> int:
    calls: int = (await sandbox.stats())["actions"].get(action, {}).get("calls", 0)
    return calls


async def quality(http: aiohttp.ClientSession, deployment: Deployment, service: str) -> dict[str, Any]:
    async with http.get(f"{deployment.api_url}/api/services/{service}") as response:
        service_view: dict[str, dict[str, Any]] = await response.json()
        return service_view["quality"]


# ---------------------------------------------------------------- a worker SIGKILLed in the middle of a paid call


async def test_a_paid_call_whose_worker_is_killed_mid_call_completes_on_another_and_is_charged_once(
    deployment: Deployment, sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await deployment.start_api()
    doomed = await deployment.start_worker()
    bought = await buy(deployment, calls=1)
    token = {"X-Payment-Token": bought["token"]}
    await sandbox.put_fault(action="DetectFace", hangRate=1.0)  # the doomed worker's call never answers
    status, accepted = await call(http, deployment, image(sandbox), Prefer="respond-async", **token)
    assert status == 202
    await until(lambda: _at_least(upstream_calls(sandbox, "DetectFace"), 1), "the doomed worker calls upstream")
    assert await doomed.kill() == -signal.SIGKILL
    await sandbox.clear_faults()
    await deployment.start_worker()

    # arq alone would run it again after the attempt timeout + 10 s; the lease lapses in seconds
    settings = Settings.from_env(deployment.env)
    view = await job(http, deployment, accepted["jobId"], wait=attempt_timeout_s(settings), **token)
    assert (view["status"], view["attempts"]) == ("succeeded", 2)
    assert view["charge"] == {"paymentId": bought["paymentId"], "paidWith": "token", "refunded": False}
    assert await upstream_calls(sandbox, "DetectFace") == 2
    payment = await payment_of(http, deployment, bought)
    assert (payment["usedCalls"], payment["remainingCalls"]) == (1, 0)
    ledger = await ledger_of(deployment, bought["paymentId"])
    assert [row["event"] for row in ledger] == ["created", "settled", "consumed"]
    assert ledger[-1]["jobId"] == accepted["jobId"]


async def _at_least(count: Awaitable[int], floor: int) -> bool:
    return await count >= floor


# ---------------------------------------------------------------- Redis SIGKILLed and restarted under load


class Load:
    """Clients that keep calling the paid tool (each call with its own Idempotency-Key, sent again after a 503
    until it is accepted, as a careful client does) and read the job back, recording every answer."""

    def __init__(self, http: aiohttp.ClientSession, deployment: Deployment, body: Any, token: str) -> None:
        self.http, self.deployment, self.body, self.token = http, deployment, body, token
        self.statuses: Counter[int] = Counter()
        self.without_retry_after = 0
        self.failures: list[str] = []  # timeouts, broken connections: anything but an HTTP answer
        self.jobs: dict[str, str] = {}  # Idempotency-Key -> the job it made
        self.changed = asyncio.Condition()
        self.stopping = False

    async def reached(self, what: Callable[[], bool]) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(what), CONDITION_TIMEOUT_S)

    async def client(self, name: str) -> None:
        for n in range(10_000):
            if self.stopping:
                return
            key = f"{name}-{n}"
            while key not in self.jobs:  # a call once sent is seen through, stopping or not
                await self._call(key)
            await self._request("GET", f"/api/jobs/{self.jobs[key]}")

    async def _call(self, key: str) -> None:
        headers = {"Idempotency-Key": key, "Prefer": "respond-async"}
        status, body = await self._request("POST", f"/api/tools/{PAID}", json=self.body, headers=headers)
        if status == 202:
            self.jobs[key] = body["jobId"]

    async def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"X-Payment-Token": self.token, **kwargs.pop("headers", {})}
        try:
            async with self.http.request(method, self.deployment.api_url + path, headers=headers, **kwargs) as answer:
                status, body = answer.status, await answer.json()
                self.without_retry_after += status == 503 and "Retry-After" not in answer.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, body = 0, None
            self.failures.append(f"{method} {path}: {exc!r}")
        async with self.changed:
            self.statuses[status] += 1
            self.changed.notify_all()
        if status not in (200, 202):
            await asyncio.sleep(POLL_S)  # a careful client pauses before sending again
        return status, body


async def test_redis_killed_and_restarted_under_load_loses_no_job_and_no_paid_call(
    deployment: Deployment, sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    redis_server = deployment.redis_server
    await asyncio.gather(deployment.start_api(), deployment.start_worker(), deployment.start_worker())
    workers = [child for child in deployment.children if child.name == "worker"]
    bought = await buy(deployment, calls=400)
    await sandbox.put_fault(action="DetectFace", latencyMs={"uniform": [50, 400]})  # some calls are in flight
    load = Load(http, deployment, image(sandbox), bought["token"])
    clients = [asyncio.create_task(load.client(f"c{n}")) for n in range(4)]

    await load.reached(lambda: len(load.jobs) >= 20)
    accepted_before = set(load.jobs.values())
    clock = asyncio.get_running_loop().time
    killed_at = clock()
    redis_server.stop(signal.SIGKILL)
    await load.reached(lambda: load.statuses[503] >= 150)  # down for a while: workers give up their first reconnect
    async with http.get(f"{deployment.api_url}/readyz") as response:
        assert response.status == 503 and response.headers["Retry-After"]
        assert (await response.json())["details"] == {"checks": {"redis": "unreachable"}}
    port = redis_server.port
    await asyncio.to_thread(redis_server.start)
    assert redis_server.port == port  # the same server, from its AOF
    restarted_at, jobs_at_restart = clock(), len(load.jobs)
    await load.reached(lambda: len(load.jobs) > jobs_at_restart)
    first_call_s = clock() - restarted_at
    await load.reached(lambda: len(load.jobs) >= jobs_at_restart + 20)  # the API serves calls again
    load.stopping = True
    await asyncio.gather(*clients)

    token = {"X-Payment-Token": bought["token"]}
    views = await asyncio.gather(*(finished(http, deployment, job_id, **token) for job_id in load.jobs.values()))
    done_s = clock() - restarted_at
    assert Counter(view["status"] for view in views) == {"succeeded": len(load.jobs)}  # the workers recovered
    assert accepted_before <= set(load.jobs.values())
    assert len(set(load.jobs.values())) == len(load.jobs)  # one job per call, however often it was sent
    assert set(load.statuses) <= {200, 202, 503} and load.without_retry_after == 0, load.statuses
    assert load.failures == []  # no hang, no broken connection: the API answered every request
    payment = await payment_of(http, deployment, bought)
    assert (payment["usedCalls"], payment["remainingCalls"]) == (len(load.jobs), 400 - len(load.jobs))
    ledger = await ledger_of(deployment, bought["paymentId"])
    assert [row["event"] for row in ledger[:2]] == ["created", "settled"]  # the stream survived
    assert Counter(row["event"] for row in ledger[2:]) == {"consumed": len(load.jobs)}
    assert {row["jobId"] for row in ledger[2:]} == set(load.jobs.values())
    assert all(worker.running for worker in workers)  # the same worker processes, recovered by themselves
    async with http.get(f"{deployment.api_url}/readyz") as response:
        assert response.status == 200 and (await response.json())["workers"]["invocation"] >= len(workers)
    print(  # figures for the record, not asserted
        f"redis down {restarted_at - killed_at:.2f} s: {load.statuses[503]} answers 503; first call accepted"
        f" {first_call_s:.2f} s after its restart, every job done {done_s:.2f} s after; {len(load.jobs)} jobs,"
        f" attempts {dict(Counter(view['attempts'] for view in views))}, answers {dict(load.statuses)}"
    )


# ---------------------------------------------------------------- an upstream failing every call of one service


async def test_an_upstream_failing_every_call_fails_paid_calls_cleanly_gives_them_back_and_turns_unhealthy(
    deployment: Deployment, sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    deployment.env.update(SERVER402_JOB_DEADLINE_S="2", SERVER402_HEALTH_INTERVAL_S="1")
    await asyncio.gather(deployment.start_api(), deployment.start_worker(), deployment.start_health_worker())
    bought = await buy(deployment, calls=3)
    token = {"X-Payment-Token": bought["token"]}
    await until(lambda: _health_is(http, deployment, "healthy"), "the first probe run")
    await sandbox.put_fault(action="DetectFace", error5xxRate=1.0)

    calls = [call(http, deployment, image(sandbox), Prefer="wait=10", **token) for _ in range(2)]
    answers = await asyncio.gather(*calls)
    for status, body in answers:
        assert (status, body["code"]) == (502, "InternalError"), body
        assert "gave up after" in body["error"] and "deadline" in body["error"]
        failed = body["job"]
        assert failed["status"] == "failed" and failed["attempts"] >= 2  # retried, within the deadline
        assert failed["error"]["code"] == "InternalError" and failed["error"]["retryable"] is True
        assert failed["charge"]["refunded"] is True and failed["charge"]["refundReason"] == "upstream_failed"
    payment = await payment_of(http, deployment, bought)
    assert (payment["usedCalls"], payment["remainingCalls"]) == (0, 3)  # both calls given back
    events = Counter(row["event"] for row in await ledger_of(deployment, bought["paymentId"]))
    assert (events["consumed"], events["credited"]) == (2, 2)
    await until(lambda: _health_is(http, deployment, "unhealthy"), "a probe run during the fault")
    assert (await quality(http, deployment, PAID))["qualityScore"] <= 1.0

    await sandbox.clear_faults()
    status, body = await call(http, deployment, image(sandbox), Prefer="wait=10", **token)
    assert (status, body["data"]["Action"]) == (200, "DetectFace")
    await until(lambda: _health_is(http, deployment, "healthy"), "a probe run after the fault")
    payment = await payment_of(http, deployment, bought)
    assert (payment["usedCalls"], payment["remainingCalls"]) == (1, 2)


async def _health_is(http: aiohttp.ClientSession, deployment: Deployment, status: str) -> bool:
    return (await quality(http, deployment, PAID))["healthStatus"] == status


# ---------------------------------------------------------------- the API SIGKILLed while clients long-poll


async def test_clients_waiting_through_an_api_restart_get_their_results_and_no_job_runs_twice(
    deployment: Deployment, sandbox: RunningSandbox
) -> None:
    api = await deployment.start_api()
    await deployment.start_worker()
    await sandbox.put_fault(action="RecognizeExpression", latencyMs={"fixed": 3000})  # slow jobs
    restarted = asyncio.Event()
    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(_mark_sent)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, trace_configs=[trace]) as http:
        job_ids = []
        for _ in range(3):
            status, accepted = await call(http, deployment, image(sandbox), FREE, Prefer="respond-async")
            assert status == 202
            job_ids.append(accepted["jobId"])
        sent = [asyncio.Event() for _ in job_ids]
        polls = [
            asyncio.create_task(_through_restart(restarted, _long_poll, http, deployment, job_id, event))
            for job_id, event in zip(job_ids, sent, strict=True)
        ]
        headers = {"Prefer": "wait=8", "Idempotency-Key": "through-restart"}  # sent again: the same job
        blocking = asyncio.create_task(
            _through_restart(restarted, call, http, deployment, image(sandbox), FREE, **headers)
        )
        await asyncio.gather(*(event.wait() for event in sent))  # every long poll is out
        await until(lambda: _at_least(upstream_calls(sandbox, "RecognizeExpression"), 4), "every job running upstream")
        assert await api.kill() == -signal.SIGKILL
        await deployment.start_api()
        restarted.set()
        polled = await asyncio.gather(*polls)
        interrupted, (status, envelope) = await blocking

    for broken, view in polled:
        assert broken >= 1  # each long poll was cut by the kill, and answered once sent again
        assert (view["status"], view["attempts"]) == ("succeeded", 1)
        assert view["result"]["data"]["Action"] == "RecognizeExpression"
    assert interrupted >= 1 and (status, envelope["data"]["Action"]) == (200, "RecognizeExpression")
    assert await upstream_calls(sandbox, "RecognizeExpression") == 4  # no job lost, none run twice


async def _mark_sent(_: aiohttp.ClientSession, context: Any, __: aiohttp.TraceRequestHeadersSentParams) -> None:
    if isinstance(context.trace_request_ctx, asyncio.Event):
        context.trace_request_ctx.set()


async def _long_poll(
    http: aiohttp.ClientSession, deployment: Deployment, job_id: str, sent: asyncio.Event
) -> dict[str, Any]:
    url = f"{deployment.api_url}/api/jobs/{job_id}"
    async with http.get(url, params={"wait": "8"}, trace_request_ctx=sent) as response:
        assert response.status == 200
        view: dict[str, Any] = await response.json()
        return view


async def _through_restart(
    restarted: asyncio.Event, request: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
) -> tuple[int, T]:
    """Send a request again once the API is back each time its connection breaks: (times broken, the answer)."""
    broken = 0
    while True:
        try:
            return broken, await request(*args, **kwargs)
        except aiohttp.ClientConnectionError:
            broken += 1
            await restarted.wait()


# ---------------------------------------------------------------- Redis lost while a paid call waits for its result


async def test_a_paid_call_waiting_when_redis_goes_away_gets_its_job_not_a_503(
    deployment: Deployment, sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    """A 503 would invite a retry that pays again: the accepted call answers 202 with its job instead."""
    await asyncio.gather(deployment.start_api(), deployment.start_worker())
    bought = await buy(deployment, calls=1)
    await sandbox.put_fault(action="DetectFace", latencyMs={"fixed": 1500})
    token = {"X-Payment-Token": bought["token"]}
    waiting = asyncio.create_task(call(http, deployment, image(sandbox), Prefer="wait=20", **token))
    await until(lambda: _called(sandbox), "the call to reach the upstream")
    deployment.redis_server.stop(signal.SIGKILL)
    status, answer = await waiting
    assert status == 202 and answer["status"] in RUNNING and answer["jobId"].startswith("job_")
    await asyncio.to_thread(deployment.redis_server.start)
    view = await finished(http, deployment, answer["jobId"], **token)
    assert view["status"] == "succeeded" and (await payment_of(http, deployment, bought))["usedCalls"] == 1


async def _called(sandbox: RunningSandbox) -> bool:
    return await upstream_calls(sandbox, "DetectFace") > 0
