"""Body analysis: BodyPosture, DetectBodyCount, DetectPedestrian, PedestrianDetectAttribute, RecognizeAction,
MonitorExamination."""

from __future__ import annotations

import random
from typing import Any

from sandbox.errors import missing
from sandbox.images import ImageInfo
from sandbox.responses import geometry as geo
from sandbox.responses.context import Builder, Call
from sandbox.responses.geometry import Rect

BODY_LAYOUT = [
    ("nose", 0.5, 0.06),
    ("neck", 0.5, 0.16),
    ("right_shoulder", 0.3, 0.18),
    ("right_elbow", 0.22, 0.34),
    ("right_wrist", 0.18, 0.48),
    ("left_shoulder", 0.7, 0.18),
    ("left_elbow", 0.78, 0.34),
    ("left_wrist", 0.82, 0.48),
    ("right_hip", 0.4, 0.52),
    ("right_knee", 0.39, 0.72),
    ("right_ankle", 0.38, 0.94),
    ("left_hip", 0.6, 0.52),
    ("left_knee", 0.61, 0.72),
    ("left_ankle", 0.62, 0.94),
    ("right_eye", 0.45, 0.04),
    ("left_eye", 0.55, 0.04),
    ("right_ear", 0.41, 0.05),
    ("left_ear", 0.59, 0.05),
]
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "Age": ("AgeLess18", "Age18-60", "AgeOver60"),
    "Gender": ("Female", "Male"),
    "Orient": ("Front", "Side", "Back"),
    "Hat": ("Yes", "No"),
    "Glasses": ("Yes", "No"),
    "Handbag": ("Yes", "No"),
    "ShoulderBag": ("Yes", "No"),
    "Backpack": ("Yes", "No"),
    "UpperWear": ("ShortSleeve", "LongSleeve"),
    "LowerWear": ("Trousers", "Shorts", "Skirt&Dress"),
    "UpperColor": ("Black", "White", "Gray", "Red", "Blue", "Green"),
    "LowerColor": ("Black", "White", "Gray", "Blue", "Brown"),
}
ACTIONS = ("举手", "吃喝", "吸烟", "打电话", "玩手机", "趴桌睡觉", "跌倒", "洗手", "拍照")


def people(rng: random.Random, info: ImageInfo, cap: int = 3) -> list[Rect]:
    count = rng.randint(1, cap)
    if info.bodies:
        return [Rect(*box) for box in info.bodies[:count]]
    return geo.body_rects(rng, info.width, info.height, count)


async def body_posture(call: Call) -> dict[str, Any]:
    info = await call.image_param("ImageURL")
    results = []
    for rect in people(call.rng, info):
        bodies = [
            {"Label": label, "Confident": geo.score(call.rng, 0.5, 0.99), "Positions": [{"Points": [x, y]}]}
            for label, x, y in geo.keypoints(call.rng, rect, BODY_LAYOUT)
        ]
        results.append({"Bodies": bodies})
    return {
        "MetaObject": {"Width": info.width, "Height": info.height},
        "Outputs": [{"HumanCount": len(results), "Results": results}],
    }


async def detect_body_count(call: Call) -> dict[str, Any]:
    info = await call.image_param("ImageURL")
    return {"PersonNumber": len(people(call.rng, info, cap=6))}


async def detect_pedestrian(call: Call) -> dict[str, Any]:
    info = await call.image_param("ImageURL")
    elements = [
        {"Type": "pedestrian", "Score": geo.score(call.rng, 0.6, 0.99), "Boxes": rect.corners()}
        for rect in people(call.rng, info)
    ]
    return {"Width": info.width, "Height": info.height, "Elements": elements}


async def pedestrian_detect_attribute(call: Call) -> dict[str, Any]:
    rng = call.rng
    info = await call.image_param("ImageURL")
    rects = people(rng, info)
    boxes = [
        {
            "TopLeftX": float(r.left),
            "TopLeftY": float(r.top),
            "BottomRightX": float(r.right),
            "BottomRightY": float(r.bottom),
            "Score": geo.score(rng, 0.6, 0.99),
        }
        for r in rects
    ]
    attributes = [
        {name: {"Name": rng.choice(values), "Score": geo.score(rng, 0.5, 0.99)} for name, values in ATTRIBUTES.items()}
        for _ in rects
    ]
    return {
        "Width": info.width,
        "Height": info.height,
        "PersonNumber": len(rects),
        "Boxes": boxes,
        "Attributes": attributes,
    }


async def recognize_action(call: Call) -> dict[str, Any]:
    params = call.params
    frames: list[ImageInfo] = []
    if params.get("VideoUrl"):
        frames = [await call.video(params["VideoUrl"], "VideoUrl")] * 3
    elif params.get("URLList"):
        for index, item in enumerate(params["URLList"], start=1):
            frames.append(await call.item_image(item, "URL", "imageData", f"URLList.{index}.URL"))
    elif params.get("VideoData"):
        frames = [ImageInfo(1280, 720, "", False)] * 3
    else:
        raise missing("VideoUrl")
    elements = []
    for index, info in enumerate(frames):
        rects = people(call.rng, info, cap=2)
        elements.append(
            {
                "Timestamp": index * 1000,
                "Labels": [call.rng.choice(ACTIONS) for _ in rects],
                "Scores": [geo.score(call.rng, 0.5, 0.99) for _ in rects],
                "Boxes": [{"Box": rect.corners()} for rect in rects],
            }
        )
    return {"Elements": elements}


async def monitor_examination(call: Call) -> dict[str, Any]:
    rng = call.rng
    await call.image_param("ImageURL")
    return {
        "ChatScore": geo.score(rng, 0, 0.3),
        "Threshold": 0.5,
        "FaceInfo": {
            "Completeness": geo.score(rng, 0.8, 1.0),
            "FaceNumber": 1,
            "Pose": {
                "Pitch": geo.score(rng, -15, 15, 2),
                "Roll": geo.score(rng, -10, 10, 2),
                "Yaw": geo.score(rng, -20, 20, 2),
            },
        },
        "PersonInfo": {
            "PersonNumber": 1,
            "CellPhone": {"Score": geo.score(rng, 0, 0.3), "Threshold": 0.6},
            "EarPhone": {"Score": geo.score(rng, 0, 0.3), "Threshold": 0.6},
        },
    }


BUILDERS: dict[str, Builder] = {
    "BodyPosture": body_posture,
    "DetectBodyCount": detect_body_count,
    "DetectPedestrian": detect_pedestrian,
    "PedestrianDetectAttribute": pedestrian_detect_attribute,
    "RecognizeAction": recognize_action,
    "MonitorExamination": monitor_examination,
}
