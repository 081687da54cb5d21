"""Face analysis: DetectFace, RecognizeFace, RecognizeExpression, DetectCelebrity, RecognizePublicFace,
ExtractFingerPrint, DeepfakeFace."""

from __future__ import annotations

import base64
import hashlib
import random
import struct
from typing import Any

from sandbox.images import ImageInfo
from sandbox.responses import geometry as geo
from sandbox.responses.context import Builder, Call
from sandbox.responses.geometry import Rect

EXPRESSIONS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")
CELEBRITIES = ("Sandbox Celebrity A", "Sandbox Celebrity B", "Sandbox Celebrity C")
DENSE_FEATURE_LENGTH = 128


def face_fields(rng: random.Random, info: ImageInfo, rects: list[Rect]) -> dict[str, Any]:
    """The fields DetectFace and RecognizeFace share, one entry (or group) per face."""
    return {
        "FaceCount": len(rects),
        "FaceRectangles": [value for rect in rects for value in rect.ltwh()],
        "FaceProbabilityList": [geo.score(rng, 0.9, 1.0) for _ in rects],
        "PoseList": [angle for _ in rects for angle in geo.pose(rng)],
        "Pupils": [value for rect in rects for value in geo.pupils(rng, rect)],
        "LandmarkCount": geo.LANDMARK_COUNT,
        "Landmarks": [value for rect in rects for value in geo.landmarks(rng, rect)],
        "Qualities": qualities(rng, len(rects)),
    }


def qualities(rng: random.Random, count: int) -> dict[str, list[float]]:
    ranges = {
        "ScoreList": (70, 99),
        "BlurList": (0, 15),
        "FnfList": (0.9, 1.0),
        "GlassList": (0, 0.2),
        "IlluList": (60, 95),
        "MaskList": (0, 0.1),
        "NoiseList": (0, 10),
        "PoseList": (75, 99),
    }
    return {name: [geo.score(rng, low, high, 2) for _ in range(count)] for name, (low, high) in ranges.items()}


def faces_in(rng: random.Random, info: ImageInfo, max_faces: Any = None) -> list[Rect]:
    """Faces of the image: where the sandbox drew them for its own samples, else drawn at random."""
    count = geo.face_count(rng, max_faces)
    if info.faces:
        return [Rect(*box) for box in info.faces[:count]]
    return geo.face_rects(rng, info.width, info.height, count)


async def detect_face(call: Call) -> dict[str, Any]:
    info = await call.image_param("ImageURL")
    rects = faces_in(call.rng, info, call.params.get("MaxFaceNumber"))
    data = face_fields(call.rng, info, rects)
    data["LandmarkScore"] = [geo.score(call.rng, 0.85, 0.99) for _ in rects]
    return data


async def recognize_face(call: Call) -> dict[str, Any]:
    rng = call.rng
    info = await call.image_param("ImageURL")
    rects = faces_in(rng, info, call.params.get("MaxFaceNumber"))
    data = face_fields(rng, info, rects)
    data.update(
        {
            "AgeList": [rng.randint(18, 70) for _ in rects],
            "GenderList": [rng.randint(0, 1) for _ in rects],
            "BeautyList": [geo.score(rng, 40, 95, 2) for _ in rects],
            "Expressions": [rng.choice((0, 0, 1, 2)) for _ in rects],
            "Glasses": [rng.choice((0, 0, 0, 1, 2)) for _ in rects],
            "HatList": [rng.choice((0, 0, 0, 1)) for _ in rects],
            "Masks": [rng.choice((0, 0, 0, 1)) for _ in rects],
            "DenseFeatureLength": DENSE_FEATURE_LENGTH,
            "DenseFeatures": [dense_feature(f"{info.digest}/{i}") for i in range(len(rects))],
        }
    )
    return data


def dense_feature(seed: str) -> str:
    """A unit-length 128-float vector (little-endian float32, base64) derived from the image."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    values = [rng.gauss(0, 1) for _ in range(DENSE_FEATURE_LENGTH)]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return base64.b64encode(struct.pack(f"<{DENSE_FEATURE_LENGTH}f", *(v / norm for v in values))).decode()


async def recognize_expression(call: Call) -> dict[str, Any]:
    info = await call.image_param("ImageURL")
    elements = [
        {
            "Expression": call.rng.choice(EXPRESSIONS),
            "FaceProbability": geo.score(call.rng, 0.9, 1.0),
            "FaceRectangle": rect.named(),
        }
        for rect in faces_in(call.rng, info)
    ]
    return {"Elements": elements}


async def detect_celebrity(call: Call) -> dict[str, Any]:
    info = await call.image_param("ImageURL")
    results = [
        {"Name": call.rng.choice(CELEBRITIES), "FaceBoxes": [float(v) for v in rect.corners()]}
        for rect in faces_in(call.rng, info)
    ]
    return {"Width": info.width, "Height": info.height, "FaceRecognizeResults": results}


async def recognize_public_face(call: Call) -> dict[str, Any]:
    rng = call.rng
    elements = []
    for index, task in enumerate(call.params.get("Task") or [], start=1):
        info = await call.item_image(task, "ImageURL", "ImageData", f"Task.{index}.ImageURL")
        sub_results: list[dict[str, Any]] = []
        rates: list[float] = []
        for rect in faces_in(rng, info):
            rates.append(geo.score(rng, 60, 99, 2))
            faces = [{"Id": f"sandbox-{rng.randint(1000, 9999)}", "Name": rng.choice(CELEBRITIES), "Rate": rates[-1]}]
            sub_results.append(
                {
                    "X": float(rect.left),
                    "Y": float(rect.top),
                    "W": float(rect.width),
                    "H": float(rect.height),
                    "Faces": faces,
                }
            )
        rate = max(rates)
        results = [
            {"Label": "sface", "Suggestion": "review" if rate > 80 else "pass", "Rate": rate, "SubResults": sub_results}
        ]
        elements.append({"TaskId": f"task-{index}", "ImageURL": task.get("ImageURL", ""), "Results": results})
    return {"Elements": elements}


async def extract_finger_print(call: Call) -> dict[str, Any]:
    info = await call.image_param("ImageURL", "ImageData")
    digest = hashlib.sha512(f"fingerprint/{info.digest}".encode()).digest()
    return {"FingerPrint": base64.b64encode(digest).decode()}


async def deepfake_face(call: Call) -> dict[str, Any]:
    rng = call.rng
    elements = []
    for index, task in enumerate(call.params.get("Tasks") or [], start=1):
        info = await call.item_image(task, "ImageURL", "ImageData", f"Tasks.{index}.ImageURL")
        results = []
        for rect in faces_in(rng, info):
            fake = rng.random() < 0.2
            results.append(
                {
                    "Label": "Deepfake" if fake else "Normal",
                    "Confidence": geo.score(rng, 0.8, 0.99),
                    "MessageTips": "",
                    "Rect": rect.named(),
                }
            )
        elements.append(
            {
                "TaskId": f"task-{index}",
                "ImageURL": task.get("ImageURL", ""),
                "FaceNumber": len(results),
                "Results": results,
            }
        )
    return {"Elements": elements}


BUILDERS: dict[str, Builder] = {
    "DetectFace": detect_face,
    "RecognizeFace": recognize_face,
    "RecognizeExpression": recognize_expression,
    "DetectCelebrity": detect_celebrity,
    "RecognizePublicFace": recognize_public_face,
    "ExtractFingerPrint": extract_finger_print,
    "DeepfakeFace": deepfake_face,
}
