"""Operator terms: prices, payment terms, upstream QPS and access rules per service, from a TOML file.

    [defaults]                 # every key optional; built-in defaults below
    amountCents = 20
    qps = 2

    [services.face-detection]  # canonical ids only; any key of [defaults]
    amountCents = 0
    requiresApiKey = true

Unknown keys, unknown service ids and out-of-range values are refused at start with a message naming them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from shared.config import ConfigError

BUILTIN_DEFAULTS: dict[str, Any] = {
    "amountCents": 20,
    "currency": "USD",
    "policyId": "aliyun-viapi",
    "settleMode": "settle_first",
    "billingMode": "per_call",
    "maxCalls": 1,
    "allowReuse": False,
    "bindClient": True,
    "providerId": "x402-base-usdc",
    "provider": "x402_facilitator",
    "qps": 2.0,
    "requiresApiKey": False,
    "enabled": True,
}


class Terms(msgspec.Struct, rename="camel", frozen=True, kw_only=True, forbid_unknown_fields=True):
    amount_cents: Annotated[int, msgspec.Meta(ge=0, le=100_000_00)]
    currency: Literal["USD"]
    policy_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    settle_mode: Literal["settle_first"]
    billing_mode: Literal["per_call"]
    max_calls: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    allow_reuse: Literal[False]  # a paid call is spent once: reuse is not offered (the catalog says false)
    bind_client: bool
    provider_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    provider: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    qps: Annotated[float, msgspec.Meta(gt=0, le=10_000)]
    requires_api_key: bool
    enabled: bool


class OperatorTerms(msgspec.Struct, frozen=True):
    defaults: Terms
    services: dict[str, Terms]

    def for_service(self, service_id: str) -> Terms:
        return self.services.get(service_id, self.defaults)


def load_operator_terms(path: Path, service_ids: Iterable[str]) -> OperatorTerms:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"operator file {path}: {exc}") from None
    return parse_operator_terms(raw, set(service_ids), source=str(path))


def parse_operator_terms(raw: dict[str, Any], known_ids: set[str], *, source: str = "operator terms") -> OperatorTerms:
    unknown_sections = set(raw) - {"defaults", "services"}
    if unknown_sections:
        raise ConfigError(
            f"{source}: unknown sections {sorted(unknown_sections)}; expected [defaults], [services.<id>]"
        )
    base = {**BUILTIN_DEFAULTS, **raw.get("defaults", {})}
    defaults = _terms(base, f"{source} [defaults]")
    overrides = raw.get("services", {})
    unknown_ids = sorted(set(overrides) - known_ids)
    if unknown_ids:
        raise ConfigError(f"{source}: unknown service ids {unknown_ids} (use canonical ids from /api/catalog)")
    services = {sid: _terms({**base, **values}, f"{source} [services.{sid}]") for sid, values in overrides.items()}
    return OperatorTerms(defaults=defaults, services=services)


def _terms(values: dict[str, Any], where: str) -> Terms:
    try:
        return msgspec.convert(values, Terms)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from None
