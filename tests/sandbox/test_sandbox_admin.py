"""The /_sandbox/ endpoints: admin API for loopback clients only, generated images, health."""

from __future__ import annotations

from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from sandbox.admin import get_stats
from sandbox.errors import SandboxError
from sandbox.testing import RunningSandbox


@pytest.mark.asyncio
async def test_admin_api_answers_loopback_clients_only(sandbox: RunningSandbox) -> None:
    transport = mock.Mock()
    transport.get_extra_info.return_value = ("192.0.2.7", 40000)
    request = make_mocked_request("GET", "/_sandbox/stats", app=sandbox.app, transport=transport)
    with pytest.raises(SandboxError) as caught:
        await get_stats(request)
    assert (caught.value.status, caught.value.code) == (403, "Forbidden")
    assert (await sandbox.admin("GET", "stats"))[0] == 200


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("name", "status", "content_type"),
    [
        ("face.jpg", 200, "image/jpeg"),
        ("face.png", 200, "image/png"),
        ("body.jpg", 200, "image/jpeg"),
        ("blank-64x32.png", 200, "image/png"),
        ("blank-20000x10.png", 404, "application/json"),
        ("nothing.gif", 404, "application/json"),
    ],
)
async def test_sample_images(sandbox: RunningSandbox, name: str, status: int, content_type: str) -> None:
    async with sandbox.http.get(sandbox.image(name)) as response:
        assert (response.status, response.content_type) == (status, content_type)


@pytest.mark.asyncio
async def test_result_names_are_checked(sandbox: RunningSandbox) -> None:
    for name, status in (
        ("EnhanceFace-64x48-0123456789abcdef.png", 200),
        ("../etc-1x1-00000000.png", 404),
        ("EnhanceFace-99999x48-0123456789abcdef.png", 404),
    ):
        async with sandbox.http.get(f"{sandbox.url}/_sandbox/results/{name}") as response:
            assert response.status == status, name


@pytest.mark.asyncio
async def test_health_lists_the_actions(sandbox: RunningSandbox) -> None:
    status, body = await sandbox.admin("GET", "health")
    assert status == 200 and body["ok"] is True
    assert {"DetectFace", "FaceLivenessV2", "SearchFace"} <= set(body["actions"])
