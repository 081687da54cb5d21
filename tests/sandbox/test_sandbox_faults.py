"""Fault injection through the admin API: each kind, exact failNext counts, seeded randomness, validation."""

from __future__ import annotations

import time
from typing import Any

import pytest
from alibabacloud_facebody20191230 import models as fb
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from darabonba.exceptions import UnretryableException

from sandbox.testing import RunningSandbox

URL = "https://example.com/a.jpg"


async def detect(client: Any, runtime: Any, read_timeout_ms: int = 5000) -> str:
    """'ok' or the error code the SDK raised."""
    try:
        await client.detect_face_with_options_async(fb.DetectFaceRequest(image_url=URL), runtime(read_timeout_ms))
    except (ClientException, ServerException) as exc:
        return str(exc.code)
    return "ok"


@pytest.mark.asyncio
async def test_error5xx_answers_internal_error(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    await sandbox.put_fault(action="DetectFace", error5xxRate=1.0)
    with pytest.raises(ServerException) as caught:
        await facebody().detect_face_with_options_async(fb.DetectFaceRequest(image_url=URL), runtime())
    assert (caught.value.code, caught.value.status_code) == ("InternalError", 500)
    assert caught.value.data["Message"] == "The request processing has failed due to some unknown error."
    await sandbox.put_fault(action="DetectFace", error5xxRate=1.0, status5xx=503)
    assert await detect(facebody(), runtime) == "ServiceUnavailable"
    assert (await sandbox.stats())["actions"]["DetectFace"] | {"maxPerSecond": 0} == {
        "calls": 2,
        "ok": 0,
        "throttled": 0,
        "errors": 2,
        "faults": 2,
        "maxPerSecond": 0,
    }


@pytest.mark.asyncio
async def test_fail_next_fails_exactly_n_calls(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    faults = await sandbox.put_fault(action="*", failNext=3)
    assert faults[0]["remainingFailNext"] == 3
    client = facebody()
    assert [await detect(client, runtime) for _ in range(5)] == ["InternalError"] * 3 + ["ok"] * 2
    _, body = await sandbox.admin("GET", "faults")
    assert body["faults"][0]["remainingFailNext"] == 0
    totals = (await sandbox.stats())["totals"]
    assert (totals["errors"], totals["faults"], totals["ok"]) == (3, 3, 2)


@pytest.mark.asyncio
async def test_non_json_body_breaks_the_sdk(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    await sandbox.put_fault(action="DetectFace", nonJsonRate=1.0)
    with pytest.raises(UnretryableException) as caught:
        await facebody().detect_face_with_options_async(fb.DetectFaceRequest(image_url=URL), runtime())
    assert not isinstance(caught.value, (ClientException, ServerException))
    async with sandbox.http.post(f"{sandbox.url}/", headers={"x-acs-action": "DetectFace"}) as response:
        assert response.status == 400  # unsigned: the fault only applies to authenticated calls
        assert response.content_type == "application/json"


@pytest.mark.asyncio
async def test_hang_holds_until_the_client_gives_up(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    await sandbox.put_fault(action="DetectFace", hangRate=1.0)
    started = time.monotonic()
    with pytest.raises(UnretryableException):
        await facebody().detect_face_with_options_async(fb.DetectFaceRequest(image_url=URL), runtime(300))
    assert 0.25 < time.monotonic() - started < 3.0
    stats = (await sandbox.stats())["actions"]["DetectFace"]
    assert (stats["calls"], stats["ok"], stats["errors"]) == (1, 0, 0)  # never answered
    await sandbox.reset()  # releases held calls, and answers once they have let go
    assert (await sandbox.stats())["hanging"] == 0


@pytest.mark.asyncio
async def test_latency_is_added(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    client = facebody()
    await sandbox.put_fault(action="DetectFace", latencyMs={"fixed": 250})
    started = time.monotonic()
    assert await detect(client, runtime) == "ok"
    assert time.monotonic() - started >= 0.25
    await sandbox.put_fault(action="DetectFace", latencyMs={"uniform": [10, 20]})
    await sandbox.put_fault(action="DetectFace", latencyMs={"lognormal": {"median": 5, "sigma": 0.5}})
    assert await detect(client, runtime) == "ok"
    assert (await sandbox.stats())["actions"]["DetectFace"]["faults"] == 0


@pytest.mark.asyncio
async def test_throttle_rate_answers_throttling_user(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    await sandbox.put_fault(action="DetectFace", throttleRate=1.0)
    assert await detect(facebody(), runtime) == "Throttling.User"
    stats = (await sandbox.stats())["actions"]["DetectFace"]
    assert (stats["throttled"], stats["faults"]) == (1, 1)


@pytest.mark.asyncio
async def test_seeded_rates_repeat_exactly(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    client = facebody()
    outcomes = []
    for _ in range(2):
        await sandbox.put_fault(action="DetectFace", error5xxRate=0.5, seed=7)
        outcomes.append([await detect(client, runtime) for _ in range(12)])
    assert outcomes[0] == outcomes[1]
    assert 0 < outcomes[0].count("InternalError") < 12


@pytest.mark.asyncio
async def test_action_rule_overrides_star_and_delete_clears(
    sandbox: RunningSandbox, facebody: Any, runtime: Any
) -> None:
    client = facebody()
    await sandbox.put_fault(action="*", error5xxRate=1.0)
    await sandbox.put_fault(action="DetectFace", latencyMs={"fixed": 0})
    assert await detect(client, runtime) == "ok"
    with pytest.raises(ServerException):
        await client.detect_celebrity_with_options_async(fb.DetectCelebrityRequest(image_url=URL), runtime())
    status, body = await sandbox.admin("DELETE", "faults")
    assert (status, body) == (200, {"faults": []})
    await client.detect_celebrity_with_options_async(fb.DetectCelebrityRequest(image_url=URL), runtime())


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "rule",
    [
        {"action": "DetectFace", "error5xxRate": 1.5},
        {"action": "DetectFace", "error5xxRate": 0.6, "hangRate": 0.6},
        {"action": "NoSuchAction", "failNext": 1},
        {"action": "DetectFace", "latencyMs": {"fixed": 1, "uniform": [1, 2]}},
        {"action": "DetectFace", "latencyMs": {"uniform": [5, 1]}},
        {"action": "DetectFace", "qps": 0},
        {"action": "DetectFace", "status5xx": 502},
        {"action": "DetectFace", "surprise": True},
        {"failNext": 1},
        "not an object",
    ],
)
async def test_bad_fault_rules_are_refused(sandbox: RunningSandbox, rule: Any) -> None:
    status, body = await sandbox.admin("PUT", "faults", rule)
    assert (status, body["Code"]) == (400, "InvalidParameter")
    assert (await sandbox.admin("GET", "faults"))[1] == {"faults": []}
