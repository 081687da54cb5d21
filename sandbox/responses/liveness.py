"""Liveness: DetectLivingFace, DetectInfraredLivingFace, DetectVideoLivingFace. Mostly live ("normal", pass)."""

from __future__ import annotations

import random
from typing import Any

from sandbox.images import ImageInfo
from sandbox.responses import geometry as geo
from sandbox.responses.context import Builder, Call
from sandbox.responses.face_analysis import faces_in


def _verdict(rng: random.Random) -> dict[str, Any]:
    live = rng.random() < 0.85
    rate = geo.score(rng, 80, 99.9, 2) if live else geo.score(rng, 50, 99, 2)
    return {
        "Label": "normal" if live else "liveness",
        "Suggestion": "pass" if live else "block",
        "Rate": rate,
        "MessageTips": "",
    }


def _results(rng: random.Random, info: ImageInfo, url: str, frames: bool) -> list[dict[str, Any]]:
    results = []
    for rect in faces_in(rng, info):
        result = {**_verdict(rng), "Rect": rect.named()}
        if frames:
            result["Frames"] = [{"Url": url, "Rate": result["Rate"]}]
        results.append(result)
    return results


async def detect_living_face(call: Call) -> dict[str, Any]:
    elements = []
    for index, task in enumerate(call.params["Tasks"], start=1):
        info = await call.item_image(task, "ImageURL", "ImageData", f"Tasks.{index}.ImageURL")
        url = task.get("ImageURL", "")
        results = _results(call.rng, info, url, frames=True)
        elements.append({"TaskId": f"task-{index}", "ImageURL": url, "FaceNumber": len(results), "Results": results})
    return {"Elements": elements}


async def detect_infrared_living_face(call: Call) -> dict[str, Any]:
    elements = []
    for index, task in enumerate(call.params["Tasks"], start=1):
        info = await call.item_image(task, "ImageURL", None, f"Tasks.{index}.ImageURL")
        results = _results(call.rng, info, task["ImageURL"], frames=False)
        elements.append({"ImageURL": task["ImageURL"], "FaceNumber": len(results), "Results": results})
    return {"Elements": elements}


async def detect_video_living_face(call: Call) -> dict[str, Any]:
    info = await call.video(call.params["VideoUrl"], "VideoUrl")
    elements = [
        {
            "FaceConfidence": geo.score(call.rng, 0.9, 1.0),
            "LiveConfidence": geo.score(call.rng, 0.8, 1.0),
            "Rect": rect.ltwh(),
        }
        for rect in faces_in(call.rng, info)
    ]
    return {"Elements": elements}


BUILDERS: dict[str, Builder] = {
    "DetectLivingFace": detect_living_face,
    "DetectInfraredLivingFace": detect_infrared_living_face,
    "DetectVideoLivingFace": detect_video_living_face,
}
