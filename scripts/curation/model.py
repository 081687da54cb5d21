"""The shape of one tool's hand-curated data (everything the SDK cannot tell us)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CATEGORIES = frozenset(
    {
        "face-database",
        "face-editing",
        "face-analysis",
        "body-analysis",
        "face-comparison",
        "liveness",
        "face-fusion",
        "real-person-verification",
    }
)
COMPLEXITIES = frozenset({"simple", "moderate", "complex"})


@dataclass(frozen=True, kw_only=True)
class ToolCuration:
    """Curated texts, examples and schema refinements for one Alibaba action.

    `field_schemas` maps a property path (`ImageURL`, or `Tasks.ImageURL` inside array items) to JSON Schema
    keywords merged over the generated property (description, enum, minimum ...). `any_of` lists groups of
    top-level fields of which at least one must be sent; `item_any_of` does the same inside array items.
    `extra_required` adds fields that Alibaba's docs require but the SDK does not mark; `excluded_fields` drops
    SDK fields a JSON caller cannot use (stream uploads).
    """

    name: str
    name_zh: str
    description: str
    description_zh: str
    description_for_model: str
    category: str
    keywords: list[str]
    aliases: list[str]
    use_cases: list[str]
    limitations: list[str]
    tags: list[str]
    related_services: list[str]
    required_context: list[str]
    complexity: str
    typical_response_time: str
    cacheable: bool
    idempotent: bool
    limits: dict[str, Any]
    example_request: dict[str, Any]
    example_result: dict[str, Any]
    any_of: list[list[str]] = field(default_factory=list)
    item_any_of: dict[str, list[list[str]]] = field(default_factory=dict)
    field_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_required: list[str] = field(default_factory=list)
    excluded_fields: list[str] = field(default_factory=list)
