"""Plausible geometry and scores, drawn from the call's seeded random.Random: everything stays inside the image."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

LANDMARK_COUNT = 105


@dataclass(frozen=True)
class Rect:
    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    def ltwh(self) -> list[int]:
        return [self.left, self.top, self.width, self.height]

    def corners(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]

    def named(self) -> dict[str, int]:
        return {"Left": self.left, "Top": self.top, "Width": self.width, "Height": self.height}

    def xywh(self) -> dict[str, int]:
        return {"X": self.left, "Y": self.top, "Width": self.width, "Height": self.height}

    def point(self, fx: float, fy: float) -> tuple[float, float]:
        return (round(self.left + fx * self.width, 2), round(self.top + fy * self.height, 2))


def score(rng: random.Random, low: float, high: float, digits: int = 4) -> float:
    return round(rng.uniform(low, high), digits)


def box(rng: random.Random, width: int, height: int, *, frac: tuple[float, float], aspect: float) -> Rect:
    """A rectangle with height = aspect * width, as large as frac (low, high) of what fits in the image."""
    box_w = max(1, min(width, int(rng.uniform(*frac) * min(width, height / aspect))))
    box_h = max(1, min(height, int(box_w * aspect)))
    return Rect(rng.randint(0, width - box_w), rng.randint(0, height - box_h), box_w, box_h)


def face_rects(rng: random.Random, width: int, height: int, count: int) -> list[Rect]:
    return [box(rng, width, height, frac=(0.25, 0.6), aspect=rng.uniform(1.1, 1.3)) for _ in range(count)]


def body_rects(rng: random.Random, width: int, height: int, count: int) -> list[Rect]:
    return [box(rng, width, height, frac=(0.5, 0.95), aspect=rng.uniform(2.0, 2.6)) for _ in range(count)]


def face_count(rng: random.Random, max_faces: Any, default: int = 1, cap: int = 3) -> int:
    limit = max_faces if isinstance(max_faces, int) and max_faces > 0 else default
    return rng.randint(1, max(1, min(limit, cap)))


def landmarks(rng: random.Random, rect: Rect) -> list[float]:
    """105 points (x, y flattened): contour 33, brows 18, eyes 16, pupils 2, nose 14, mouth 22."""
    points: list[tuple[float, float]] = []
    points += _arc(rect, (0.5, 0.45), (0.48, 0.52), (math.pi * 0.05, math.pi * 0.95), count=33)
    for cx in (0.3, 0.7):
        points += _arc(rect, (cx, 0.33), (0.13, 0.04), (math.pi, math.pi * 2), count=9)
    for cx in (0.3, 0.7):
        points += _arc(rect, (cx, 0.42), (0.1, 0.035), (0, math.pi * 2), count=8, closed=False)
    points += [rect.point(0.3, 0.42), rect.point(0.7, 0.42)]
    points += [rect.point(0.5, 0.42 + 0.025 * i) for i in range(8)]
    points += _arc(rect, (0.5, 0.62), (0.1, 0.04), (0, math.pi), count=6)
    points += _arc(rect, (0.5, 0.78), (0.17, 0.06), (0, math.pi * 2), count=12, closed=False)
    points += _arc(rect, (0.5, 0.78), (0.1, 0.025), (0, math.pi * 2), count=10, closed=False)
    jitter = max(1.0, rect.width * 0.005)
    flat: list[float] = []
    for x, y in points[:LANDMARK_COUNT]:
        flat.append(round(min(rect.right, max(rect.left, x + rng.uniform(-jitter, jitter))), 2))
        flat.append(round(min(rect.bottom, max(rect.top, y + rng.uniform(-jitter, jitter))), 2))
    return flat


def pupils(rng: random.Random, rect: Rect) -> list[float]:
    radius = round(rect.width * rng.uniform(0.025, 0.035), 2)
    left, right = rect.point(0.3, 0.42), rect.point(0.7, 0.42)
    return [left[0], left[1], radius, right[0], right[1], radius]


def pose(rng: random.Random) -> list[float]:
    return [score(rng, -25, 25, 2), score(rng, -20, 20, 2), score(rng, -15, 15, 2)]


def keypoints(rng: random.Random, rect: Rect, layout: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    jitter = 0.02
    return [
        (
            label,
            *rect.point(
                min(1, max(0, fx + rng.uniform(-jitter, jitter))), min(1, max(0, fy + rng.uniform(-jitter, jitter)))
            ),
        )
        for label, fx, fy in layout
    ]


def _arc(
    rect: Rect,
    centre: tuple[float, float],
    radii: tuple[float, float],
    span: tuple[float, float],
    *,
    count: int,
    closed: bool = True,
) -> list[tuple[float, float]]:
    (cx, cy), (rx, ry), (start, stop) = centre, radii, span
    steps = count - 1 if closed else count
    angles = [start + (stop - start) * i / max(1, steps) for i in range(count)]
    return [rect.point(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]
