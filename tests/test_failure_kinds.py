"""Failures are classified once: the worker's upstream boundary gives each a kind (shared/failures.py), and the
kind decides the HTTP status, whether a retry may help, the job view's httpStatus and so the client's error.

Real parts: the sandbox upstream answering through the real SDK (`workers.upstream.Upstream`), and the whole
pipeline with the client library (`client.Server402`) for the statuses a caller sees.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from support import Pipeline

from client import ApiError, Server402
from sandbox.config import KeyPair, SandboxConfig
from sandbox.testing import RunningSandbox, run_sandbox
from scripts.embedded_redis import EmbeddedRedis
from shared.catalog import load_specs
from shared.config import Settings
from shared.failures import Kind, failure
from shared.jobs import CANCELED_BEFORE_RUN, EXPIRED, JobError, answer_status
from workers.tasks import CANCELED, DEADLINE_PASSED
from workers.upstream import Upstream, UpstreamError, kind_of

KEY_ID, SECRET = "kinds-key-id", "kinds-key-secret"
DETECT_FACE = next(spec for spec in load_specs() if spec.action == "DetectFace")
UNREACHABLE = "unreachable"  # an endpoint nothing listens on: every connection refused


def closed_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(SandboxConfig(key_pairs=(KeyPair(KEY_ID, SECRET),), qps=1000)) as running:
        yield running


def upstream(redis_server: EmbeddedRedis, endpoint: str, key_id: str = KEY_ID, secret: str = SECRET) -> Upstream:
    return Upstream(
        Settings.from_env(
            {
                "REDIS_URL": redis_server.url,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
                "SERVER402_FACEBODY_ENDPOINT": endpoint,
                "SERVER402_CLOUDAUTH_ENDPOINT": endpoint,
                "SERVER402_UPSTREAM_READ_TIMEOUT_S": "0.3",
            }
        ).upstream
    )


# ---------------------------------------------------------------- the upstream's answers, over the wire


@pytest.mark.parametrize(
    ("fault", "image", "credentials", "code", "kind", "status", "retryable"),
    [
        ({}, "no-such-image.jpg", (KEY_ID, SECRET), "InvalidImage.Download", "input", 422, False),
        ({"error5xxRate": 1.0}, "face.jpg", (KEY_ID, SECRET), "InternalError", "server", 502, True),
        ({"error5xxRate": 1.0, "status5xx": 503}, "face.jpg", (KEY_ID, SECRET), "ServiceUnavailable", "server", 502,
         True),
        ({"throttleRate": 1.0}, "face.jpg", (KEY_ID, SECRET), "Throttling.User", "throttled", 503, True),
        ({"nonJsonRate": 1.0}, "face.jpg", (KEY_ID, SECRET), "UpstreamUnavailable", "unavailable", 504, True),
        ({"hangRate": 1.0}, "face.jpg", (KEY_ID, SECRET), "UpstreamUnavailable", "unavailable", 504, True),
        ({}, UNREACHABLE, (KEY_ID, SECRET), "UpstreamUnavailable", "unavailable", 504, True),
        ({}, "face.jpg", (KEY_ID, "not-the-secret"), "SignatureDoesNotMatch", "operator", 502, False),
        ({}, "face.jpg", ("no-such-key", SECRET), "InvalidAccessKeyId.NotFound", "operator", 502, False),
    ],
    ids=["refused-input", "5xx", "503", "throttled", "non-json", "hang", "refused-connection", "bad-signature",
         "unknown-key"],
)  # fmt: skip
async def test_each_upstream_answer_gets_one_kind_and_the_kind_its_status_and_retry(
    redis_server: EmbeddedRedis,
    sandbox: RunningSandbox,
    fault: dict[str, Any],
    image: str,
    credentials: tuple[str, str],
    code: str,
    kind: Kind,
    status: int,
    retryable: bool,
) -> None:
    if fault:
        await sandbox.put_fault(action="DetectFace", **fault)
    endpoint = closed_endpoint() if image == UNREACHABLE else sandbox.endpoint
    params = {"ImageURL": sandbox.image("face.jpg" if image == UNREACHABLE else image)}
    gateway_side = upstream(redis_server, endpoint, *credentials)
    try:
        with pytest.raises(UpstreamError) as caught:
            await gateway_side.call(DETECT_FACE, params, timeout_s=1.0)
    finally:
        await gateway_side.close()
    # on the kept connections the workers use (workers/transport.py), unless the SDK refused before sending
    assert gateway_side.pool.calls == (0 if code == "InvalidCredentials" else 1)
    error = caught.value
    assert (error.code, error.kind, error.retryable) == (code, kind, retryable)
    assert failure(error.kind).status == status
    stored = JobError.of(error.kind, error.code, error.message)  # what the worker stores on the job
    assert (stored.retryable, answer_status("failed", stored)) == (retryable, status)


# ---------------------------------------------------------------- codes the sandbox does not answer


@pytest.mark.parametrize(
    ("code", "http_status", "kind"),
    [
        ("Throttling.Api", 400, "throttled"),
        ("Throttling.User", 503, "throttled"),
        ("InternalError.Algorithm", 400, "server"),
        ("Timeout", 408, "server"),  # the upstream answered that its backend timed out: a verdict, so not unavailable
        ("InvalidImage.Download", 502, "server"),  # any 5xx
        ("InvalidApi.NotPurchase", 403, "operator"),
        ("Forbidden.RAM", 403, "operator"),
        ("InvalidTimeStamp.Expired", 400, "operator"),
        ("InvalidCredentials", None, "operator"),  # the SDK refused before sending: our configuration
        ("InvalidParameter", 400, "input"),
        ("MissingImageURL", 400, "input"),
        ("InvalidParameter", 200, "input"),  # Cloudauth's verdicts inside an HTTP 200: never retried
        ("Throttling.Api", 200, "input"),
        ("Forbidden.NoPermission", 200, "operator"),
    ],
)
def test_codes_and_http_statuses_map_to_kinds(code: str, http_status: int | None, kind: Kind) -> None:
    assert kind_of(code, http_status) == kind


# ---------------------------------------------------------------- our own errors, and errors stored before kinds


@pytest.mark.parametrize(
    ("error", "job_status", "kind", "status", "retryable"),
    [
        (CANCELED, "canceled", "canceled", 409, False),
        (CANCELED_BEFORE_RUN, "canceled", "canceled", 409, False),
        (EXPIRED, "expired", "expired", 504, True),
        (DEADLINE_PASSED, "failed", "server", 502, True),
        (None, "failed", "input", 422, False),
        (None, "canceled", "canceled", 409, False),
    ],
)
def test_our_own_job_errors_have_kinds(
    error: JobError | None, job_status: str, kind: Kind, status: int, retryable: bool
) -> None:
    if error is not None:
        assert (error.kind, error.retryable) == (kind, retryable)
    assert answer_status(job_status, error) == status


@pytest.mark.parametrize(
    ("stored", "job_status", "kind", "status"),
    [
        ('{"code":"InvalidImage.Download","message":"m","retryable":false}', "failed", "input", 422),
        ('{"code":"Throttling.User","message":"m","retryable":true}', "failed", "throttled", 503),
        ('{"code":"Throttling.Gateway","message":"m","retryable":true}', "queued", "throttled", 202),
        ('{"code":"UpstreamUnavailable","message":"m","retryable":true}', "failed", "unavailable", 504),
        ('{"code":"InternalError","message":"m","retryable":true}', "failed", "server", 502),
        ('{"code":"deadline_exceeded","message":"m","retryable":true}', "failed", "server", 502),
        ('{"code":"SignatureDoesNotMatch","message":"m","retryable":false}', "failed", "operator", 502),
        ('{"code":"payment_failed","message":"m","retryable":true}', "failed", "unpaid", 402),
        ('{"code":"payment_refused","message":"m","retryable":false}', "failed", "input", 422),
        ('{"code":"canceled","message":"m","retryable":false}', "canceled", "canceled", 409),
        ('{"code":"job_expired","message":"m","retryable":true}', "expired", "expired", 504),
    ],
)
def test_an_error_stored_without_a_kind_gets_the_one_its_code_implies(
    stored: str, job_status: str, kind: Kind, status: int
) -> None:
    error = msgspec.json.decode(stored, type=JobError)
    assert error.kind == kind
    assert answer_status(job_status, error) == status
    assert msgspec.json.decode(msgspec.json.encode(error), type=JobError) == error  # stored again with its kind


# ---------------------------------------------------------------- what the client says, through the pipeline


@pytest.fixture
def pipeline_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Short deadlines and waits: a failing job ends in 2 s, after the call's 0.5 s wait answered 202, so the
    client finds it failed while polling and has only the job view to go by."""
    env = {"SERVER402_JOB_DEADLINE_S": "2", "SERVER402_WAIT_DEFAULT_S": "0.5", "SERVER402_WAIT_MAX_S": "0.5"}
    if getattr(request, "param", None) == UNREACHABLE:
        env["SERVER402_FACEBODY_ENDPOINT"] = closed_endpoint()
    return env


@pytest.mark.parametrize(
    ("pipeline_env", "fault", "code", "kind", "status"),
    [
        (None, {"throttleRate": 1.0}, "Throttling.User", "throttled", 503),
        (UNREACHABLE, None, "UpstreamUnavailable", "unavailable", 504),
    ],
    indirect=["pipeline_env"],
    ids=["throttled", "unreachable"],
)
async def test_the_clients_error_for_a_failed_job_has_the_status_the_server_answers(
    pipeline: Pipeline, fault: dict[str, Any] | None, code: str, kind: Kind, status: int
) -> None:
    if fault is not None:
        await pipeline.sandbox.put_fault(action="DetectFace", **fault)
    base_url = str(pipeline.api.make_url("")).rstrip("/")
    image = {"ImageURL": pipeline.sandbox.image("face.jpg")}
    key = f"kinds-{kind}"

    def call() -> ApiError:
        with Server402(base_url, retries=0) as client, pytest.raises(ApiError) as caught:
            client.call("face-detection", image, wait=30, idempotency_key=key)
        return caught.value

    error = await asyncio.to_thread(call)
    assert (error.status, error.code) == (status, code), error
    assert set(error.body) == {"job"}  # found failed while polling: from the job view alone
    view = error.body["job"]
    assert (view["status"], view["httpStatus"], view["error"]["kind"]) == ("failed", status, kind)
    assert view["attempts"] > 1  # retried within the deadline

    answered, body, headers = await pipeline.call("face-detection", image, **{"Idempotency-Key": key})
    assert (answered, body["code"], body["job"]["httpStatus"]) == (status, code, status)  # the same job, answered
    assert headers.get("Retry-After") == ("1" if kind == "throttled" else None)


@pytest.mark.no_worker
async def test_a_job_view_says_202_while_it_waits_and_200_once_it_succeeded(pipeline: Pipeline) -> None:
    answered, job, _ = await pipeline.call(
        "face-detection", {"ImageURL": pipeline.sandbox.image("face.jpg")}, Prefer="respond-async"
    )
    assert (answered, job["status"], job["httpStatus"]) == (202, "queued", 202)
    pipeline.start_worker()
    for _ in range(40):  # long polls of at most SERVER402_WAIT_MAX_S (0.5 s here)
        _, final = await pipeline.job(job["jobId"], wait=0.5)
        if final["status"] == "succeeded":
            break
    assert (final["status"], final["httpStatus"]) == ("succeeded", 200)
