"""Compare and search: CompareFace, CompareFaceWithMask, SearchFace.

Similarity comes from the images' features (sha256 of the content, or of the URL when not fetched): the same
image scores 0.95-0.99, two different images a deterministic 0.05-0.45.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from sandbox.errors import invalid_parameter, missing
from sandbox.images import ImageInfo
from sandbox.responses import geometry as geo
from sandbox.responses.context import Builder, Call
from sandbox.responses.geometry import Rect

THRESHOLDS = [61.0, 69.0, 75.0]  # confidence at false-accept rates 1e-3, 1e-4, 1e-5
MAX_SEARCH_LIMIT = 1000


def similarity(feature_a: str, feature_b: str) -> float:
    if feature_a == feature_b:
        return round(0.95 + int(feature_a[:2] or "0", 16) / 255 * 0.04, 4)
    pair = "/".join(sorted((feature_a, feature_b)))
    return round(0.05 + hashlib.sha256(pair.encode()).digest()[0] / 255 * 0.4, 4)


def image_rng(info: ImageInfo) -> random.Random:
    return random.Random(int(info.digest[:16] or "0", 16))


def main_face(info: ImageInfo) -> Rect:
    if info.faces:
        return Rect(*info.faces[0])
    return geo.face_rects(image_rng(info), info.width, info.height, 1)[0]


def five_points(rect: Rect) -> list[int]:
    layout = ((0.3, 0.42), (0.7, 0.42), (0.5, 0.6), (0.35, 0.78), (0.65, 0.78))
    return [int(value) for fx, fy in layout for value in rect.point(fx, fy)]


async def _compare(call: Call, with_data: bool) -> tuple[dict[str, Any], ImageInfo, ImageInfo]:
    info_a = await call.image_param("ImageURLA", "ImageDataA" if with_data else None)
    info_b = await call.image_param("ImageURLB", "ImageDataB" if with_data else None)
    rect_a, rect_b = main_face(info_a), main_face(info_b)
    data = {
        "Confidence": round(similarity(info_a.digest, info_b.digest) * 100, 2),
        "RectAList": rect_a.ltwh(),
        "RectBList": rect_b.ltwh(),
        "LandmarksAList": five_points(rect_a),
        "LandmarksBList": five_points(rect_b),
        "QualityScoreA": geo.score(image_rng(info_a), 70, 99, 2),
        "QualityScoreB": geo.score(image_rng(info_b), 70, 99, 2),
        "IsMaskA": 0,
        "IsMaskB": 0,
        "MessageTips": "",
    }
    return data, info_a, info_b


async def compare_face(call: Call) -> dict[str, Any]:
    data, _, _ = await _compare(call, with_data=True)
    data["Thresholds"] = list(THRESHOLDS)
    return data


async def compare_face_with_mask(call: Call) -> dict[str, Any]:
    data, info_a, info_b = await _compare(call, with_data=False)
    data["Thresholds"] = [int(value) for value in THRESHOLDS]
    data["IsMaskA"] = image_rng(info_a).choice((0, 1))
    data["IsMaskB"] = image_rng(info_b).choice((0, 1))
    return data


def _db_names(params: dict[str, Any]) -> list[str]:
    names = [params["DbName"]] if params.get("DbName") else []
    names += [name.strip() for name in str(params.get("DbNames") or "").split(",") if name.strip()]
    if not names:
        raise missing("DbName")
    return list(dict.fromkeys(names))


async def search_face(call: Call) -> dict[str, Any]:
    params, rng = call.params, call.rng
    dbs = [call.account.db(name) for name in _db_names(params)]
    limit = params["Limit"]
    if not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise invalid_parameter("Limit", f"must be between 1 and {MAX_SEARCH_LIMIT}")
    info = await call.image_param("ImageUrl")
    max_faces = params.get("MaxFaceNum") or 1
    rects = [main_face(info), *geo.face_rects(rng, info.width, info.height, geo.face_count(rng, max_faces) - 1)]
    stored = [(db.name, face) for db in dbs for entity in db.entities.values() for face in entity.faces.values()]
    matches = []
    for index, rect in enumerate(rects):
        feature = info.digest if index == 0 else hashlib.sha256(f"{info.digest}/{index}".encode()).hexdigest()
        scored = sorted(
            ((similarity(feature, face.feature), db_name, face) for db_name, face in stored),
            key=lambda entry: (-entry[0], entry[1], int(entry[2].face_id)),
        )
        items = [
            {
                "FaceId": face.face_id,
                "EntityId": face.entity_id,
                "DbName": db_name,
                "Score": score,
                "Confidence": round(score * 100, 2),
                "ExtraData": face.extra_data,
            }
            for score, db_name, face in scored[:limit]
        ]
        matches.append({"Location": rect.xywh(), "QualitieScore": geo.score(rng, 70, 99, 2), "FaceItems": items})
    return {"MatchList": matches}


BUILDERS: dict[str, Builder] = {
    "CompareFace": compare_face,
    "CompareFaceWithMask": compare_face_with_mask,
    "SearchFace": search_face,
}
