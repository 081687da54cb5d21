"""What a response builder gets: the typed parameters, a seeded random.Random, the caller's state, image access."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from sandbox.catalog import ImageLimits
from sandbox.errors import missing
from sandbox.images import ImageInfo, ImageLoader, image_data
from sandbox.samples import result_name
from sandbox.state import Account

Builder = Callable[["Call"], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Call:
    action: str
    params: dict[str, Any]
    rng: random.Random
    account: Account
    loader: ImageLoader
    limits: ImageLimits
    base_url: str

    async def image(self, url: str, field: str) -> ImageInfo:
        return await self.loader.image(url, self.limits, field)

    async def video(self, url: str, field: str) -> ImageInfo:
        return await self.loader.video(url, self.limits, field)

    async def image_param(self, url_field: str, data_field: str | None = None) -> ImageInfo:
        """The image named by `url_field`, else decoded from the base64 `data_field`; Missing<url_field> if none."""
        return await self.item_image(self.params, url_field, data_field, url_field)

    async def item_image(self, item: dict[str, Any], url_field: str, data_field: str | None, name: str) -> ImageInfo:
        url = item.get(url_field)
        if url:
            return await self.image(url, name)
        if data_field and item.get(data_field):
            return image_data(item[data_field], self.limits, name)
        raise missing(name)

    def result_url(self, label: str, info: ImageInfo) -> str:
        seed = f"{self.action}/{label}/{canonical(self.params)}"
        return f"{self.base_url}/_sandbox/results/{result_name(label, info.width, info.height, seed)}"


def canonical(params: dict[str, Any]) -> str:
    return msgspec.json.encode(params, order="sorted").decode()


def seeded_rng(action: str, params: dict[str, Any]) -> random.Random:
    digest = hashlib.sha256(f"{action}\n{canonical(params)}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
