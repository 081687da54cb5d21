"""The upstream calls keep their connections (workers/transport.py): the real SDK builds and signs each call, and
the sandbox (over real HTTP) counts the TCP connections they came on. Every other test that calls through
`workers.upstream.Upstream` (tests/test_failure_kinds.py: 5xx, non-JSON, hung and refused calls) goes the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from alibabacloud_facebody20191230 import models
from alibabacloud_facebody20191230.client import Client
from alibabacloud_tea_openapi import models as openapi_models
from alibabacloud_tea_util.models import RuntimeOptions
from darabonba.request import DaraRequest

from sandbox.config import KeyPair, SandboxConfig
from sandbox.testing import RunningSandbox, run_sandbox
from shared.catalog import load_specs
from shared.config import Settings
from workers import transport
from workers.upstream import Upstream, UpstreamError

KEY_ID, SECRET = "transport-key-id", "transport-key-secret"
DETECT_FACE = next(spec for spec in load_specs() if spec.action == "DetectFace")


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(SandboxConfig(key_pairs=(KeyPair(KEY_ID, SECRET),), qps=1000)) as running:
        yield running


@pytest.fixture
async def upstream(sandbox: RunningSandbox) -> AsyncIterator[Upstream]:
    settings = Settings.from_env(
        {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
            "SERVER402_FACEBODY_ENDPOINT": sandbox.endpoint,
            "SERVER402_CLOUDAUTH_ENDPOINT": sandbox.endpoint,
        }
    )
    gateway_side = Upstream(settings.upstream)
    yield gateway_side
    await gateway_side.close()


async def connections(sandbox: RunningSandbox) -> tuple[int, int]:
    """(calls, TCP connections they came on) since the sandbox's last reset."""
    totals = (await sandbox.stats())["totals"]
    return totals["calls"], totals["connections"]


async def test_calls_one_after_another_share_one_connection(sandbox: RunningSandbox, upstream: Upstream) -> None:
    params = {"ImageURL": sandbox.image("face.jpg")}
    for _ in range(10):
        result = await upstream.call(DETECT_FACE, params, timeout_s=5.0)
        assert result.result["FaceCount"] == 1
    assert await connections(sandbox) == (10, 1)
    assert upstream.pooled_calls == 10


async def test_calls_at_once_open_at_most_one_connection_each_and_keep_them(
    sandbox: RunningSandbox, upstream: Upstream
) -> None:
    params = {"ImageURL": sandbox.image("face.jpg")}
    for _ in range(3):
        await asyncio.gather(*(upstream.call(DETECT_FACE, params, timeout_s=5.0) for _ in range(8)))
    calls, opened = await connections(sandbox)
    assert calls == 24
    assert opened <= 8


async def test_a_failed_call_leaves_the_next_working_and_close_reopens(
    sandbox: RunningSandbox, upstream: Upstream
) -> None:
    params = {"ImageURL": sandbox.image("face.jpg")}
    await sandbox.put_fault(action="DetectFace", nonJsonRate=1.0)  # a 502 with an HTML body
    with pytest.raises(UpstreamError) as caught:
        await upstream.call(DETECT_FACE, params, timeout_s=5.0)
    assert caught.value.kind == "unavailable"
    await sandbox.clear_faults()
    assert (await upstream.call(DETECT_FACE, params, timeout_s=5.0)).result["FaceCount"] == 1
    await upstream.close()
    assert (await upstream.call(DETECT_FACE, params, timeout_s=5.0)).result["FaceCount"] == 1
    assert await connections(sandbox) == (3, 2)  # the one kept until close, then a new one


async def test_sdk_calls_made_outside_an_upstream_go_the_sdks_own_way(
    sandbox: RunningSandbox, upstream: Upstream
) -> None:
    """The transport is installed in the process (the fixture's Upstream did), yet a client of anyone else's keeps
    the SDK's own transport: a new connection per call."""
    assert upstream.pooled_calls == 0
    config = openapi_models.Config(
        access_key_id=KEY_ID, access_key_secret=SECRET, endpoint=sandbox.endpoint, protocol="http",
        region_id="cn-shanghai",
    )  # fmt: skip
    client = Client(config)
    request = models.DetectFaceRequest(image_url=sandbox.image("face.jpg"))
    for _ in range(3):
        await client.detect_face_with_options_async(request, RuntimeOptions(autoretry=False))
    assert await connections(sandbox) == (3, 3)
    assert upstream.pooled_calls == 0


def request(protocol: str) -> DaraRequest:
    made = DaraRequest()
    made.protocol = protocol
    return made


@pytest.mark.parametrize(
    ("protocol", "runtime", "environment", "kept"),
    [
        ("http", {"readTimeout": 1000, "httpProxy": None}, {}, True),
        ("HTTPS", {}, {}, True),
        ("http", {"httpProxy": "http://proxy.invalid:3128"}, {}, False),
        ("https", {"httpsProxy": "http://proxy.invalid:3128"}, {}, False),
        ("http", {}, {"HTTP_PROXY": "http://proxy.invalid:3128"}, False),
        ("https", {}, {"https_proxy": "http://proxy.invalid:3128"}, False),
        ("https", {}, {"HTTP_PROXY": "http://proxy.invalid:3128"}, True),  # (the SDK reads HTTP's for http only)
        ("https", {"ignoreSSL": True}, {}, False),
        ("https", {"ca": "/etc/ssl/mine.pem"}, {}, False),
        ("https", {"cert": "/etc/ssl/client.pem"}, {}, False),
        ("https", {"tlsMinVersion": "TLSv1.2"}, {}, False),
        ("ftp", {}, {}, False),
    ],
)
def test_only_calls_a_kept_session_sends_as_the_sdk_would_are_kept(
    monkeypatch: pytest.MonkeyPatch, protocol: str, runtime: dict[str, object], environment: dict[str, str], kept: bool
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert transport.keeps(request(protocol), runtime) is kept
