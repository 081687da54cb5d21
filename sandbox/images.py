"""Images and videos named by a request: fetched only from loopback, decoded with Pillow, checked against limits.

A URL whose host is loopback (127.0.0.0/8, ::1, localhost) is downloaded (aiohttp, 5 s, no redirects, at most the
action's maxBytes) and decoded: its pixel size drives the rectangles of the answer and its content hash the face
"features". Any other URL is NEVER fetched: it is assumed to be a 1024x768 image (1280x720 video) and the answer
is derived from the URL text. Base64 fields (ImageData...) are decoded in place.

Errors (400): InvalidImage.Download (cannot fetch: refused, timeout, non-200, redirect), InvalidFile.Content
(more bytes than the action allows, or a format it does not accept), InvalidFile.Decode (not an image, bad
base64), InvalidImage.Region (width or height outside the action's minSide..maxSide).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace

import aiohttp
import yarl
from PIL import Image, UnidentifiedImageError

from sandbox.catalog import ImageLimits
from sandbox.config import is_loopback_host
from sandbox.errors import ImageError
from sandbox.samples import Box, Sample

DEFAULT_IMAGE_SIZE = (1024, 768)
DEFAULT_VIDEO_SIZE = (1280, 720)
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    digest: str  # hex sha256 of the content, or of the URL when it was not fetched
    fetched: bool
    faces: tuple[Box, ...] = ()  # where the face and person are, for the sandbox's own samples
    bodies: tuple[Box, ...] = ()


def is_loopback_url(url: str) -> bool:
    try:
        host = yarl.URL(url).host
    except (ValueError, TypeError):
        return False
    return host is not None and is_loopback_host(host)


def assumed(url: str, size: tuple[int, int] = DEFAULT_IMAGE_SIZE) -> ImageInfo:
    return ImageInfo(size[0], size[1], hashlib.sha256(url.encode()).hexdigest(), False)


class ImageLoader:
    def __init__(self, session: aiohttp.ClientSession, timeout_s: float, samples: Mapping[str, Sample]) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._known = {hashlib.sha256(s.data).hexdigest(): (s.faces, s.bodies) for s in samples.values()}
        self.fetches = 0  # loopback downloads attempted, for GET /_sandbox/stats

    async def image(self, url: str, limits: ImageLimits, field: str) -> ImageInfo:
        if not is_loopback_url(url):
            return assumed(url)
        data = await self._fetch(url, limits.max_bytes, field)
        info = decode(data, limits, field)
        known = self._known.get(info.digest)
        return info if known is None else replace(info, faces=known[0], bodies=known[1])

    async def video(self, url: str, limits: ImageLimits, field: str) -> ImageInfo:
        """Videos cannot be decoded without ffmpeg: fetched and size-checked, then measured only if Pillow can."""
        if not is_loopback_url(url):
            return assumed(url, DEFAULT_VIDEO_SIZE)
        data = await self._fetch(url, limits.max_bytes, field)
        try:
            return decode(data, ImageLimits(max_bytes=limits.max_bytes), field)
        except ImageError:
            return ImageInfo(*DEFAULT_VIDEO_SIZE, hashlib.sha256(data).hexdigest(), True)

    async def _fetch(self, url: str, max_bytes: int, field: str) -> bytes:
        self.fetches += 1
        try:
            async with self._session.get(url, allow_redirects=False, timeout=self._timeout) as response:
                if response.status != 200:
                    raise _download_error(field, f"HTTP {response.status}")
                if response.content_length is not None and response.content_length > max_bytes:
                    raise _too_large(field, max_bytes)
                data = bytearray()
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    data += chunk
                    if len(data) > max_bytes:
                        raise _too_large(field, max_bytes)
                return bytes(data)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise _download_error(field, type(exc).__name__) from None


def image_data(encoded: str, limits: ImageLimits, field: str) -> ImageInfo:
    try:
        data = base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        raise ImageError("InvalidFile.Decode", f"{field} is not valid base64.") from None
    if len(data) > limits.max_bytes:
        raise _too_large(field, limits.max_bytes)
    return decode(data, limits, field)


def decode(data: bytes, limits: ImageLimits, field: str) -> ImageInfo:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                image_format = (image.format or "").upper()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("InvalidFile.Content", f"The image of {field} has too many pixels.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageError("InvalidFile.Decode", f"The content of {field} cannot be decoded as an image.") from None
    if limits.formats and image_format not in limits.formats:
        raise ImageError(
            "InvalidFile.Content",
            f"The image format {image_format or 'unknown'} of {field} is not "
            f"supported; use {', '.join(limits.formats)}.",
        )
    if min(width, height) < limits.min_side or max(width, height) > limits.max_side:
        raise ImageError(
            "InvalidImage.Region",
            f"The image of {field} is {width}x{height} pixels; each side must "
            f"be between {limits.min_side} and {limits.max_side}.",
        )
    return ImageInfo(width, height, hashlib.sha256(data).hexdigest(), True)


def _download_error(field: str, why: str) -> ImageError:
    return ImageError("InvalidImage.Download", f"Failed to download the image of {field} ({why}).")


def _too_large(field: str, max_bytes: int) -> ImageError:
    return ImageError("InvalidFile.Content", f"The file of {field} is larger than {max_bytes} bytes.")
