"""The pages' static files (`static/`): read once, each with its content type and a content-hash ETag.

Pages link to `/static/<name>?v=<hash>`; a request carrying the current hash may be cached for a year
(`immutable`), any other must revalidate with its ETag. Only files that exist in `static/` when first asked for
are served, by exact name, so no path can reach outside the folder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static/"
CONTENT_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
TEXT_SUFFIXES = frozenset({".css", ".js", ".svg"})


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    body: bytes
    content_type: str
    charset: str | None
    version: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    @property
    def url(self) -> str:
        return f"{STATIC_PREFIX}{self.name}?v={self.version}"


@cache
def assets() -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        charset = "utf-8" if path.suffix in TEXT_SUFFIXES else None
        found[path.name] = Asset(path.name, body, content_type, charset, hashlib.sha256(body).hexdigest()[:16])
    return found


def asset_url(name: str) -> str:
    """The versioned URL of a static file (KeyError for a file that does not exist: a bug in a template)."""
    return assets()[name].url
