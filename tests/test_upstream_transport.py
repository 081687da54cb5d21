"""The upstream calls keep their connections (workers/transport.py): the real SDK builds and signs each call, and
the sandbox (over real HTTP) counts the TCP connections they came on. Every other test that calls through
`workers.upstream.Upstream` (tests/test_failure_kinds.py: 5xx, non-JSON, hung and refused calls) goes the same way.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from alibabacloud_facebody20191230 import models
from alibabacloud_facebody20191230.client import Client
from alibabacloud_tea_openapi import models as openapi_models
from alibabacloud_tea_util.models import RuntimeOptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from darabonba.exceptions import UnretryableException
from darabonba.request import DaraRequest

from sandbox.app import create_app
from sandbox.appkeys import STATS
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


def make_upstream(endpoint: str, protocol: str = "http") -> Upstream:
    settings = Settings.from_env(
        {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
            "SERVER402_FACEBODY_ENDPOINT": endpoint,
            "SERVER402_CLOUDAUTH_ENDPOINT": endpoint,
            "SERVER402_UPSTREAM_PROTOCOL": protocol,
        }
    )
    return Upstream(settings.upstream)


@pytest.fixture
async def upstream(sandbox: RunningSandbox) -> AsyncIterator[Upstream]:
    """(tests/conftest.py clears the proxy variables, which would send calls the SDK's way)"""
    gateway_side = make_upstream(sandbox.endpoint)
    try:
        yield gateway_side
    finally:
        await gateway_side.close()
        assert gateway_side.pool.open_sessions() == 0


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
    assert (upstream.pool.calls, upstream.pool.sessions) == (10, 1)


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
    await upstream.call(DETECT_FACE, {"ImageURL": sandbox.image("face.jpg")}, timeout_s=5.0)  # (installs it)
    await sandbox.reset()
    config = openapi_models.Config(
        access_key_id=KEY_ID, access_key_secret=SECRET, endpoint=sandbox.endpoint, protocol="http",
        region_id="cn-shanghai",
    )  # fmt: skip
    client = Client(config)
    request = models.DetectFaceRequest(image_url=sandbox.image("face.jpg"))
    for _ in range(3):
        await client.detect_face_with_options_async(request, RuntimeOptions(autoretry=False))
    assert await connections(sandbox) == (3, 3)
    assert upstream.pool.calls == 1


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


async def test_a_session_past_its_age_hands_new_calls_to_a_new_one_and_closes_after_its_last(
    sandbox: RunningSandbox, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"ImageURL": sandbox.image("face.jpg")}
    await upstream.call(DETECT_FACE, params, timeout_s=5.0)
    await sandbox.put_fault(action="DetectFace", latencyMs={"fixed": 200})
    slow = asyncio.gather(*(upstream.call(DETECT_FACE, params, timeout_s=5.0) for _ in range(3)))
    await asyncio.sleep(0.05)  # the three are on the first session now
    monkeypatch.setattr(transport, "SESSION_MAX_AGE_S", 0.0)
    await sandbox.clear_faults()
    await upstream.call(DETECT_FACE, params, timeout_s=5.0)  # a second session; the first still carries three
    assert (upstream.pool.sessions, upstream.pool.open_sessions()) == (2, 2)
    assert all(result.result["FaceCount"] == 1 for result in await slow)
    assert upstream.pool.open_sessions() == 1  # the first closed after its last call
    await upstream.call(DETECT_FACE, params, timeout_s=5.0)  # the second, idle and past its age: closed at once
    assert (upstream.pool.sessions, upstream.pool.open_sessions()) == (3, 1)


async def test_the_kept_session_keeps_no_cookie(sandbox: RunningSandbox, upstream: Upstream) -> None:
    """The SDK's session per call never sends a cookie back; one kept for every tenant's calls must not either."""
    await upstream.call(DETECT_FACE, {"ImageURL": sandbox.image("face.jpg")}, timeout_s=5.0)
    async with upstream.pool.session() as http:
        assert isinstance(http.cookie_jar, aiohttp.DummyCookieJar)


def self_signed(directory: Path) -> ssl.SSLContext:
    """A server context for 127.0.0.1 with a certificate no CA signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


async def test_https_on_the_kept_path_refuses_a_certificate_no_trusted_ca_signed(tmp_path: Path) -> None:
    """The kept path verifies as the SDK's own does (certifi's CA bundle): a self-signed upstream is refused before
    any request reaches it, on the kept path and the SDK's alike."""
    app = create_app(SandboxConfig(key_pairs=(KeyPair(KEY_ID, SECRET),), qps=1000))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self_signed(tmp_path))
        await site.start()
        endpoint = f"127.0.0.1:{runner.addresses[0][1]}"
        gateway_side = make_upstream(endpoint, protocol="https")
        try:
            with pytest.raises(UpstreamError) as caught:
                await gateway_side.call(DETECT_FACE, {"ImageURL": "https://images.example.com/a.jpg"}, timeout_s=5.0)
            assert caught.value.kind == "unavailable"
            assert gateway_side.pool.calls == 1  # (it went the kept way)
        finally:
            await gateway_side.close()
        config = openapi_models.Config(access_key_id=KEY_ID, access_key_secret=SECRET, endpoint=endpoint,
                                       protocol="https", region_id="cn-shanghai")  # fmt: skip
        with pytest.raises(UnretryableException, match="CERTIFICATE_VERIFY_FAILED"):
            await Client(config).detect_face_with_options_async(
                models.DetectFaceRequest(image_url="https://images.example.com/a.jpg"), RuntimeOptions(autoretry=False)
            )
        assert app[STATS].snapshot()["totals"]["calls"] == 0
    finally:
        await runner.cleanup()
