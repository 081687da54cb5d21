"""Domain models as msgspec Structs; JSON field names are camelCase as in the seed documents.

`ToolSpec` is one entry of the generated `shared/data/tools.json` (see docs/catalog-data.md). `Service` is the
public service object the catalog, search and service endpoints answer with: the seed's fields plus a few of
ours (`nameZh`, `descriptionZh`, `upstream`, `requiresApiKey`).
"""

from __future__ import annotations

from typing import Any

import msgspec


class Camel(msgspec.Struct, rename="camel", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base for camelCase JSON structs."""


class ErrorExample(Camel, frozen=True):
    input: dict[str, Any]
    error: str
    status_code: int


class WireField(Camel, frozen=True):
    name: str
    location: str
    type: str


class ToolSpec(Camel, frozen=True):
    id: str
    legacy_id: str
    tool_name: str
    product: str
    version: str
    action: str
    sdk_method: str
    request_class: str
    http_method: str
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
    input_types: list[str]
    output_types: list[str]
    input_schema: dict[str, Any]
    result_schema: dict[str, Any]
    example_request: dict[str, Any]
    example_result: dict[str, Any]
    related_services: list[str]
    required_context: list[str]
    error_examples: list[ErrorExample]
    complexity: str
    typical_response_time: str
    cacheable: bool
    idempotent: bool
    limits: dict[str, Any]
    fields: list[WireField]


class Pricing(Camel, frozen=True):
    amount_cents: int
    currency: str
    policy_id: str
    settle_mode: str
    billing_mode: str
    max_calls: int
    allow_reuse: bool
    bind_client: bool


class PaymentProvider(Camel, frozen=True):
    provider_id: str
    provider: str


class Quality(Camel, frozen=True):
    quality_score: float = 0
    health_status: str = "unknown"
    health_checked_at: str | None = None
    health_latency_ms: int | None = None
    success_rate: float | None = None
    call_count: int = 0
    execution_count: int = 0
    success_count: int = 0
    error_count: int = 0
    payment_requireds: int = 0
    last_call_at: str | None = None


class Discovery(Camel, frozen=True):
    tool_name: str
    search_text: str
    aliases: list[str]
    locale_hints: list[str]
    use_cases: list[str]
    limitations: list[str]
    payment_flow: dict[str, Any]
    payment_hint: str
    retry_hint: str
    required_state: str


class Sla(Camel, frozen=True):
    uptime: str
    max_latency: str


class UpstreamAction(Camel, frozen=True):
    """The Alibaba product, API version and action a service calls."""

    product: str
    version: str
    action: str


class Service(Camel, frozen=True):
    id: str
    canonical_id: str
    internal_service_id: str
    name: str
    name_zh: str
    description: str
    description_zh: str
    description_for_model: str
    category: str
    keywords: list[str]
    use_cases: list[str]
    limitations: list[str]
    tags: list[str]
    method: str
    endpoint: str
    legacy_endpoint: str
    endpoint_aliases: list[str]
    input_types: list[str]
    output_types: list[str]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    example_request: dict[str, Any]
    example_response: dict[str, Any]
    pricing: Pricing
    payment: PaymentProvider
    quality: Quality
    discovery: Discovery
    complexity: str
    typical_response_time: str
    cacheable: bool
    idempotent: bool
    output_format: str
    related_services: list[str]
    required_context: list[str]
    error_examples: list[ErrorExample]
    sla: Sla
    upstream: UpstreamAction
    requires_api_key: bool
