"""The service registry: generated tool data + operator terms -> public `Service` objects.

Built once per process (`Catalog.load`). Lookups accept the canonical id, the legacy internal id
(`aliyun-facebody-...`) and the MCP tool name; all resolve to the same service.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from shared import payment_docs
from shared.config import ConfigError
from shared.models import Discovery, PaymentProvider, Pricing, Quality, Service, Sla, ToolSpec, UpstreamAction
from shared.operator import OperatorTerms, Terms, load_operator_terms

TOOLS_FILE = Path(__file__).resolve().parent / "data" / "tools.json"
TOOLS_PATH_PREFIX = "/api/tools/"
EXAMPLE_REQUEST_ID = "5F0C8F5A-3D1B-4E7A-9C2E-8B6D4A1F0E37"


class Catalog:
    def __init__(self, services: list[Service], specs: dict[str, ToolSpec], terms: OperatorTerms) -> None:
        self.services: tuple[Service, ...] = tuple(services)
        self.specs = specs
        self.terms = terms
        self._by_key: dict[str, Service] = {}
        for service in services:
            spec = specs[service.id]
            for key in (service.id, spec.legacy_id, spec.tool_name):
                if key in self._by_key:
                    raise ConfigError(f"catalog: {key!r} names two services")
                self._by_key[key] = service

    @classmethod
    def load(cls, operator_file: Path, tools_file: Path = TOOLS_FILE) -> Catalog:
        specs = load_specs(tools_file)
        terms = load_operator_terms(operator_file, (spec.id for spec in specs))
        return cls.build(specs, terms)

    @classmethod
    def build(cls, specs: list[ToolSpec], terms: OperatorTerms) -> Catalog:
        enabled = [spec for spec in specs if terms.for_service(spec.id).enabled]
        services = [build_service(spec, terms.for_service(spec.id)) for spec in enabled]
        return cls(services, {spec.id: spec for spec in enabled}, terms)

    def resolve(self, key: str) -> Service | None:
        return self._by_key.get(key)

    def __iter__(self) -> Iterator[Service]:
        return iter(self.services)

    def __len__(self) -> int:
        return len(self.services)


def load_specs(tools_file: Path = TOOLS_FILE) -> list[ToolSpec]:
    try:
        return msgspec.json.decode(tools_file.read_bytes(), type=list[ToolSpec])
    except (OSError, msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"tool data {tools_file}: {exc} (regenerate with `python -m scripts.gen_catalog`)") from None


def build_service(spec: ToolSpec, terms: Terms) -> Service:
    endpoint = TOOLS_PATH_PREFIX + spec.id
    legacy_endpoint = TOOLS_PATH_PREFIX + spec.legacy_id
    return Service(
        id=spec.id,
        canonical_id=spec.id,
        internal_service_id=spec.legacy_id,
        name=spec.name,
        name_zh=spec.name_zh,
        description=spec.description,
        description_zh=spec.description_zh,
        description_for_model=spec.description_for_model,
        category=spec.category,
        keywords=spec.keywords,
        use_cases=spec.use_cases,
        limitations=spec.limitations,
        tags=spec.tags,
        method="POST",
        endpoint=endpoint,
        legacy_endpoint=legacy_endpoint,
        endpoint_aliases=[endpoint, legacy_endpoint],
        input_types=spec.input_types,
        output_types=spec.output_types,
        input_schema=spec.input_schema,
        output_schema=output_schema(spec),
        example_request=spec.example_request,
        example_response=envelope(spec.action, spec.example_result, EXAMPLE_REQUEST_ID),
        pricing=pricing(terms),
        payment=PaymentProvider(provider_id=terms.provider_id, provider=terms.provider),
        quality=Quality(),
        discovery=discovery(spec, endpoint),
        complexity=spec.complexity,
        typical_response_time=spec.typical_response_time,
        cacheable=spec.cacheable,
        idempotent=spec.idempotent,
        output_format="json",
        related_services=spec.related_services,
        required_context=spec.required_context,
        error_examples=spec.error_examples,
        sla=Sla(uptime="99.5%", max_latency="5000ms"),
        upstream=UpstreamAction(product=spec.product, version=spec.version, action=spec.action),
        requires_api_key=terms.requires_api_key,
    )


def envelope(action: str, result: Any, request_id: str) -> dict[str, Any]:
    """The seed's success envelope around an upstream result."""
    return {
        "code": "200",
        "content": "",
        "data": {"Action": action, "Result": result},
        "message": "success",
        "requestId": request_id,
    }


def output_schema(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "content": {"type": "string"},
            "data": {
                "type": "object",
                "properties": {"Action": {"const": spec.action, "type": "string"}, "Result": spec.result_schema},
                "required": ["Action", "Result"],
            },
            "message": {"type": "string"},
            "requestId": {"type": "string"},
        },
        "required": ["requestId", "data"],
    }


def pricing(terms: Terms) -> Pricing:
    return Pricing(
        amount_cents=terms.amount_cents,
        currency=terms.currency,
        policy_id=terms.policy_id,
        settle_mode=terms.settle_mode,
        billing_mode=terms.billing_mode,
        max_calls=terms.max_calls,
        allow_reuse=terms.allow_reuse,
        bind_client=terms.bind_client,
    )


def discovery(spec: ToolSpec, endpoint: str) -> Discovery:
    names = [spec.id, spec.tool_name, spec.legacy_id, spec.action, spec.name, spec.name_zh]
    aliases = _unique([*names, spec.category, *spec.tags, *spec.keywords, *spec.aliases, endpoint])
    texts = [spec.description, spec.description_zh, *spec.keywords, *spec.aliases, *spec.use_cases]
    search_text = " ".join(_unique([*names, *texts, spec.category, *spec.tags, endpoint]))
    return Discovery(
        tool_name=spec.tool_name,
        search_text=search_text,
        aliases=aliases,
        locale_hints=["en", "zh"],
        use_cases=spec.use_cases,
        limitations=spec.limitations,
        payment_flow=payment_docs.PAYMENT_FLOW,
        payment_hint=payment_docs.payment_hint(spec.id),
        retry_hint=payment_docs.RETRY_HINT,
        required_state="published, enabled",
    )


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))
