"""Deterministic, plausible geometry for example results (landmarks, pupils, body keypoints).

Example images are 1024x768; every rectangle is [left, top, width, height] inside that frame.
"""

from __future__ import annotations

import math

IMAGE_WIDTH = 1024
IMAGE_HEIGHT = 768
LANDMARKS_PER_FACE = 105

# Two faces in a 1024x768 team photo: [left, top, width, height].
FACE_A = [212, 168, 186, 232]
FACE_B = [618, 205, 160, 201]


def landmarks(rect: list[int]) -> list[float]:
    """105 (x, y) points inside the face box: 33 on the jaw/face contour, the rest on inner feature rings."""
    left, top, width, height = rect
    centre_x, centre_y = left + width / 2, top + height / 2
    points: list[float] = []
    for index in range(LANDMARKS_PER_FACE):
        ring = 0.46 if index < 33 else 0.30 if index < 71 else 0.16
        angle = 2 * math.pi * index / LANDMARKS_PER_FACE
        points.append(round(centre_x + ring * width * math.cos(angle), 1))
        points.append(round(centre_y + ring * height * math.sin(angle), 1))
    return points


def pupils(rect: list[int]) -> list[float]:
    """[left_x, left_y, left_radius, right_x, right_y, right_radius] for one face."""
    left, top, width, height = rect
    eye_y = round(top + height * 0.42, 1)
    radius = round(width * 0.035, 1)
    return [round(left + width * 0.32, 1), eye_y, radius, round(left + width * 0.68, 1), eye_y, radius]


# 18 body keypoints of a person standing left of centre, as fractions of the image size.
BODY_KEYPOINTS = [
    ("nose", 0.412, 0.171),
    ("neck", 0.410, 0.262),
    ("right_shoulder", 0.362, 0.268),
    ("right_elbow", 0.341, 0.392),
    ("right_wrist", 0.336, 0.503),
    ("left_shoulder", 0.459, 0.266),
    ("left_elbow", 0.481, 0.388),
    ("left_wrist", 0.487, 0.497),
    ("right_hip", 0.381, 0.532),
    ("right_knee", 0.376, 0.701),
    ("right_ankle", 0.372, 0.872),
    ("left_hip", 0.437, 0.531),
    ("left_knee", 0.441, 0.699),
    ("left_ankle", 0.445, 0.869),
    ("right_eye", 0.401, 0.155),
    ("left_eye", 0.423, 0.154),
    ("right_ear", 0.389, 0.163),
    ("left_ear", 0.436, 0.162),
]


def body_keypoints() -> list[dict[str, object]]:
    confidences = [0.93, 0.95, 0.91, 0.88, 0.84, 0.92, 0.87, 0.83, 0.86, 0.85, 0.81, 0.87, 0.84, 0.8]
    confidences += [0.9, 0.9, 0.76, 0.74]
    return [
        {"Label": label, "Confident": confidence, "Positions": [{"Points": [x, y]}]}
        for (label, x, y), confidence in zip(BODY_KEYPOINTS, confidences, strict=True)
    ]
