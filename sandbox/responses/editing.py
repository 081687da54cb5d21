"""Face image editing: BlurFace, EnhanceFace, FaceBeauty, LiquifyFace, RetouchSkin, GenerateHumanAnimeStyle,
GenerateHumanSketchStyle. Each answers a result image URL served by the sandbox itself
(http://<host>/_sandbox/results/<name>.png, the size of the input image, rendered on request)."""

from __future__ import annotations

from typing import Any

from sandbox.errors import invalid_parameter
from sandbox.responses.context import Builder, Call

RANGES = {
    "Sharp": (0.0, 1.0),
    "Smooth": (0.0, 1.0),
    "White": (0.0, 1.0),
    "SlimDegree": (0.0, 2.0),
    "RetouchDegree": (0.0, 1.0),
    "WhiteningDegree": (0.0, 1.0),
}
ANIME_STYLES = ("anime", "3d", "handdrawn", "sketch", "artstyle", "claborate", "hongkong", "comic", "animation3d")
SKETCH_RETURN_TYPES = ("head", "full")


def _check_ranges(params: dict[str, Any]) -> None:
    for name, (low, high) in RANGES.items():
        value = params.get(name)
        if value is not None and not low <= value <= high:
            raise invalid_parameter(name, f"must be between {low} and {high}")


def _check_choice(params: dict[str, Any], name: str, choices: tuple[str, ...]) -> None:
    value = params.get(name)
    if value is not None and value not in choices:
        raise invalid_parameter(name, f"use one of {', '.join(choices)}")


async def _edited(call: Call, label: str) -> dict[str, Any]:
    _check_ranges(call.params)
    info = await call.image_param("ImageURL")
    return {"ImageURL": call.result_url(label, info)}


async def blur_face(call: Call) -> dict[str, Any]:
    info = await call.image_param("ImageURL")
    return {"ImageURL": call.result_url("BlurFace", info), "MaskURL": call.result_url("BlurFaceMask", info)}


async def enhance_face(call: Call) -> dict[str, Any]:
    return await _edited(call, "EnhanceFace")


async def face_beauty(call: Call) -> dict[str, Any]:
    return await _edited(call, "FaceBeauty")


async def liquify_face(call: Call) -> dict[str, Any]:
    return await _edited(call, "LiquifyFace")


async def retouch_skin(call: Call) -> dict[str, Any]:
    return await _edited(call, "RetouchSkin")


async def generate_human_anime_style(call: Call) -> dict[str, Any]:
    _check_choice(call.params, "AlgoType", ANIME_STYLES)
    return await _edited(call, "GenerateHumanAnimeStyle")


async def generate_human_sketch_style(call: Call) -> dict[str, Any]:
    _check_choice(call.params, "ReturnType", SKETCH_RETURN_TYPES)
    return await _edited(call, "GenerateHumanSketchStyle")


BUILDERS: dict[str, Builder] = {
    "BlurFace": blur_face,
    "EnhanceFace": enhance_face,
    "FaceBeauty": face_beauty,
    "LiquifyFace": liquify_face,
    "RetouchSkin": retouch_skin,
    "GenerateHumanAnimeStyle": generate_human_anime_style,
    "GenerateHumanSketchStyle": generate_human_sketch_style,
}
