"""Loopback images are fetched and decoded (limits enforced); anything else is never fetched."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import pytest
from alibabacloud_facebody20191230 import models as fb
from alibabacloud_tea_openapi.exceptions import ClientException
from PIL import Image

from sandbox.appkeys import CATALOG
from sandbox.images import is_loopback_url
from sandbox.testing import RunningSandbox


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 100, 50)).save(buffer, format="PNG")
    return buffer.getvalue()


async def error_code(call: Any) -> str:
    with pytest.raises(ClientException) as caught:
        await call
    assert caught.value.status_code == 400
    return str(caught.value.code)


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8403/a.jpg", True),
        ("http://127.9.9.9/a.jpg", True),
        ("http://localhost/a.jpg", True),
        ("http://[::1]:80/a.jpg", True),
        ("https://example.com/a.jpg", False),
        ("http://10.0.0.1/a.jpg", False),
        ("http://127.0.0.1.example.com/a.jpg", False),
        ("http://localhost.example.com/a.jpg", False),
        ("http://0x7f000001/a.jpg", False),
        ("http://2130706433/a.jpg", False),
        ("not a url", False),
    ],
)
def test_loopback_classification(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


@pytest.mark.asyncio
async def test_non_loopback_url_is_never_fetched(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    client = facebody()
    started = time.monotonic()
    for url in ("https://example.com/a.jpg", "http://10.255.255.1/unroutable.jpg"):
        data = (
            await client.detect_celebrity_with_options_async(fb.DetectCelebrityRequest(image_url=url), runtime())
        ).body.data
        assert (data.width, data.height) == (1024, 768)
    assert time.monotonic() - started < 2.0  # no 5 s fetch timeout was waited for
    assert (await sandbox.stats())["fetches"] == 0
    await client.detect_celebrity_with_options_async(
        fb.DetectCelebrityRequest(image_url=sandbox.image("face.jpg")), runtime()
    )
    assert (await sandbox.stats())["fetches"] == 1


@pytest.mark.asyncio
async def test_undecodable_loopback_image(served: Any, facebody: Any, runtime: Any) -> None:
    served.files["junk.jpg"] = (b"this is not an image" * 10, "image/jpeg")
    call = facebody().detect_face_with_options_async(fb.DetectFaceRequest(image_url=served("junk.jpg")), runtime())
    assert await error_code(call) == "InvalidFile.Decode"


@pytest.mark.asyncio
async def test_loopback_image_over_the_byte_limit(
    sandbox: RunningSandbox, served: Any, facebody: Any, runtime: Any
) -> None:
    limit = sandbox.app[CATALOG].resolve("BodyPosture", "2019-12-30").limits.max_bytes
    served.files["big.png"] = (png(64, 64) + b"\0" * limit, "image/png")
    call = facebody().body_posture_with_options_async(fb.BodyPostureRequest(image_url=served("big.png")), runtime())
    assert await error_code(call) == "InvalidFile.Content"


@pytest.mark.asyncio
async def test_loopback_image_outside_the_pixel_limits(sandbox: RunningSandbox, facebody: Any, runtime: Any) -> None:
    limits = sandbox.app[CATALOG].resolve("DetectFace", "2019-12-30").limits
    client = facebody()
    sizes = [(limits.max_side + 1, 64)] + ([(limits.min_side - 1, 64)] if limits.min_side > 1 else [])
    for width, height in sizes:
        url = sandbox.image(f"blank-{width}x{height}.png")
        assert (
            await error_code(client.detect_face_with_options_async(fb.DetectFaceRequest(image_url=url), runtime()))
            == "InvalidImage.Region"
        )


@pytest.mark.asyncio
async def test_loopback_image_that_cannot_be_downloaded(
    sandbox: RunningSandbox, served: Any, facebody: Any, runtime: Any
) -> None:
    client = facebody()
    for url in (served("absent.jpg"), "http://127.0.0.1:9/refused.jpg"):
        assert (
            await error_code(client.detect_face_with_options_async(fb.DetectFaceRequest(image_url=url), runtime()))
            == "InvalidImage.Download"
        )


@pytest.mark.asyncio
async def test_base64_images_compare_by_content(facebody: Any, runtime: Any) -> None:
    client = facebody()
    a, b = base64.b64encode(png(300, 400)).decode(), base64.b64encode(png(301, 400)).decode()
    same = (
        await client.compare_face_with_options_async(fb.CompareFaceRequest(image_data_a=a, image_data_b=a), runtime())
    ).body.data
    other = (
        await client.compare_face_with_options_async(fb.CompareFaceRequest(image_data_a=a, image_data_b=b), runtime())
    ).body.data
    assert same.confidence > same.thresholds[2] > other.confidence
    left, top, width, height = same.rect_alist
    assert left + width <= 300 and top + height <= 400
    bad = client.compare_face_with_options_async(fb.CompareFaceRequest(image_data_a="!!!", image_data_b=a), runtime())
    assert await error_code(bad) == "InvalidFile.Decode"
