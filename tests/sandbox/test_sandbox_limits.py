"""Per-(access key, action) QPS limit: Throttling.User over it, counted in the stats."""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_facebody20191230 import models as fb
from alibabacloud_tea_openapi.exceptions import ClientException

from sandbox.config import KeyPair, SandboxConfig
from sandbox.limits import RateLimiter
from sandbox.stats import Stats
from sandbox.testing import RunningSandbox

URL = "https://example.com/a.jpg"


@pytest.fixture
def sandbox_config(keys: Any) -> SandboxConfig:
    return SandboxConfig(
        key_pairs=(KeyPair(keys.key_id, keys.secret), KeyPair(keys.other_key_id, keys.other_secret)), qps=2
    )


async def detect(client: Any, runtime: Any) -> str:
    try:
        await client.detect_face_with_options_async(fb.DetectFaceRequest(image_url=URL), runtime())
    except ClientException as exc:
        assert exc.status_code == 400
        assert exc.data["Message"] == "Request was denied due to user flow control."
        return str(exc.code)
    return "ok"


@pytest.mark.asyncio
async def test_third_call_within_a_second_is_throttled(
    sandbox: RunningSandbox, facebody: Any, runtime: Any, keys: Any
) -> None:
    client = facebody()
    assert [await detect(client, runtime) for _ in range(3)] == ["ok", "ok", "Throttling.User"]
    other_key = facebody(keys.other_key_id, keys.other_secret)
    assert await detect(other_key, runtime) == "ok"
    await client.detect_celebrity_with_options_async(fb.DetectCelebrityRequest(image_url=URL), runtime())
    stats = await sandbox.stats()
    assert stats["actions"]["DetectFace"] == {
        "calls": 4,
        "ok": 3,
        "throttled": 1,
        "errors": 0,
        "faults": 0,
        "maxPerSecond": 3,
    }
    assert stats["actions"]["DetectCelebrity"]["ok"] == 1
    assert stats["totals"]["throttled"] == 1


@pytest.mark.asyncio
async def test_qps_is_settable_per_action_and_globally(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    client = facebody()
    await sandbox.put_fault(action="*", qps=5)
    await sandbox.put_fault(action="DetectFace", qps=1)
    assert [await detect(client, runtime) for _ in range(2)] == ["ok", "Throttling.User"]
    for _ in range(5):
        await client.detect_celebrity_with_options_async(fb.DetectCelebrityRequest(image_url=URL), runtime())
    with pytest.raises(ClientException) as caught:
        await client.detect_celebrity_with_options_async(fb.DetectCelebrityRequest(image_url=URL), runtime())
    assert caught.value.code == "Throttling.User"
    assert (await sandbox.stats())["actions"]["DetectCelebrity"]["maxPerSecond"] == 5


def test_limiter_window_slides() -> None:
    limiter = RateLimiter()
    accepted = [limiter.try_acquire("ak", "A", 2, now) for now in (0.0, 0.1, 0.5, 1.0, 1.05, 1.1, 2.2)]
    assert accepted == [True, True, False, True, False, True, True]
    assert limiter.try_acquire("other", "A", 2, 0.5)
    assert limiter.try_acquire("ak", "B", 2, 0.5)


def test_calls_are_windowed_by_arrival_even_when_their_handlers_run_out_of_order() -> None:
    limiter = RateLimiter()
    assert limiter.try_acquire("ak", "A", 2, 1.0)
    assert limiter.try_acquire("ak", "A", 2, 0.5)  # arrived earlier, handled later: (0, 1.0] holds 2
    assert not limiter.try_acquire("ak", "A", 2, 0.2)  # (0, 1.0] would hold 3: the window ending at 1.0 counts
    assert not limiter.try_acquire("ak", "A", 2, 1.4)  # (0.4, 1.4] holds 0.5 and 1.0
    assert limiter.try_acquire("ak", "A", 2, 1.6)  # (0.6, 1.6] holds 1.0 only
    for now in (10.0, 10.5):  # an old arrival far behind the latest is dropped, not counted
        assert limiter.try_acquire("ak", "A", 2, now)
    assert not limiter.try_acquire("ak", "A", 2, 10.7)


def test_max_per_second_counts_a_late_handled_arrival_in_the_windows_after_it() -> None:
    stats = Stats()
    for now in (1.0, 1.2, 0.5):  # 0.5 handled last: (0.2, 1.2] holds 0.5, 1.0 and 1.2
        stats.accepted("A", now)
    assert stats.snapshot()["actions"]["A"]["maxPerSecond"] == 3


def test_max_per_second_is_the_busiest_sliding_window() -> None:
    stats = Stats()
    for now in (0.0, 0.4, 0.9, 1.3, 1.35, 1.36, 5.0):
        stats.accepted("A", now)
    assert stats.snapshot()["actions"]["A"]["maxPerSecond"] == 5  # 0.4, 0.9, 1.3, 1.35, 1.36
