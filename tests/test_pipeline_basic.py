"""A tool call end to end: API -> Redis -> arq worker -> real SDK -> sandbox over HTTP -> result back."""

from __future__ import annotations

from support import Pipeline


async def test_blocking_call_returns_the_seed_envelope(pipeline: Pipeline) -> None:
    image = pipeline.sandbox.image("face.jpg")
    status, body, _ = await pipeline.call("face-detection", {"ImageURL": image})
    assert status == 200, body
    assert body["code"] == "200" and body["message"] == "success" and body["content"] == ""
    assert body["data"]["Action"] == "DetectFace"
    assert body["data"]["Result"]["FaceCount"] >= 1
    assert body["requestId"]
