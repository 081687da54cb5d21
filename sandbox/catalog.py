"""The actions the sandbox answers: one ActionSpec per entry of shared/data/tools.json, loaded once at startup.

Only the keys the sandbox needs are decoded (action, product, version, inputSchema, fields, limits); the rest of
the generated entry is ignored, so the catalog may grow without breaking the sandbox. Image limits come from the
entry's `limits`; where the generator has none yet, the limits Alibaba documents (DOCUMENTED_LIMITS) apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from sandbox.errors import RoutingError
from sandbox.params import ParamParser

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MB = 1024 * 1024
DOCUMENTED_LIMITS: dict[str, dict[str, Any]] = {
    "DetectFace": {"maxBytes": 30 * MB, "formats": ["JPEG", "PNG", "BMP"], "minSide": 32, "maxSide": 8192},
    "CompareFace": {"maxBytes": 5 * MB, "maxSide": 4095},
    "BodyPosture": {"maxBytes": 3 * MB},
    "DetectLivingFace": {"maxBytes": 10 * MB},
    "RecognizeExpression": {"maxBytes": 3 * MB, "maxSide": 2048},
    "FaceLivenessV2": {"maxBytes": 1 * MB, "formats": ["JPEG", "PNG"]},
}


class CatalogError(ValueError):
    """tools.json is missing or malformed."""


class WireField(msgspec.Struct, frozen=True):
    name: str
    location: str
    type: str


class ToolEntry(msgspec.Struct, frozen=True, rename="camel"):
    action: str
    product: str
    version: str
    input_schema: dict[str, Any]
    fields: list[WireField] = []  # wire locations; the parser accepts query and body alike
    limits: dict[str, Any] = {}


class ImageLimits(msgspec.Struct, frozen=True):
    max_bytes: int = DEFAULT_MAX_BYTES
    formats: tuple[str, ...] = ()
    min_side: int = 1
    max_side: int = 1_000_000


class ActionSpec:
    def __init__(self, entry: ToolEntry) -> None:
        self.action = entry.action
        self.product = entry.product
        self.version = entry.version
        self.host_id = f"{entry.product}.cn-shanghai.aliyuncs.com"
        self.parser = ParamParser(entry.input_schema)
        self.limits = _limits(entry.limits or DOCUMENTED_LIMITS.get(entry.action, {}))


class ActionCatalog:
    def __init__(self, specs: list[ActionSpec]) -> None:
        self._specs = {spec.action: spec for spec in specs}

    @classmethod
    def load(cls, tools_file: Path) -> ActionCatalog:
        try:
            entries = msgspec.json.decode(tools_file.read_bytes(), type=list[ToolEntry])
        except FileNotFoundError:
            raise CatalogError(
                f"tools file {tools_file} not found; generate it with `python -m scripts.gen_catalog` "
                "or point SERVER402_TOOLS_FILE at one"
            ) from None
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CatalogError(f"tools file {tools_file}: {exc}") from None
        return cls([ActionSpec(entry) for entry in entries])

    @property
    def actions(self) -> list[str]:
        return sorted(self._specs)

    def get(self, action: str) -> ActionSpec | None:
        return self._specs.get(action)

    def resolve(self, action: str, version: str) -> ActionSpec:
        spec = self._specs.get(action)
        if spec is None:
            raise RoutingError(
                "InvalidAction.NotFound",
                f"Specified api {action or '(none)'} is not found, please check your url and method.",
                404,
            )
        if version != spec.version:
            raise RoutingError(
                "InvalidVersion",
                f"Specified parameter Version {version or '(none)'} is not valid "
                f"for {action}; expected {spec.version}.",
            )
        return spec


def _limits(raw: dict[str, Any]) -> ImageLimits:
    formats = tuple("JPEG" if str(f).upper() == "JPG" else str(f).upper() for f in raw.get("formats") or ())
    return ImageLimits(
        max_bytes=int(raw.get("maxBytes") or DEFAULT_MAX_BYTES),
        formats=formats,
        min_side=int(raw.get("minSide") or 1),
        max_side=int(raw.get("maxSide") or 1_000_000),
    )
