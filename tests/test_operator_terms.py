"""Operator terms: seed defaults, per-service overrides, and refusals that name the problem."""

from __future__ import annotations

import pytest

from shared.config import ConfigError
from shared.operator import parse_operator_terms

IDS = {"face-detection", "face-comparison"}


def test_defaults_are_the_seed_terms() -> None:
    terms = parse_operator_terms({}, IDS).for_service("face-detection")
    assert terms.amount_cents == 20 and terms.currency == "USD" and terms.max_calls == 1
    assert terms.settle_mode == "settle_first" and terms.bind_client is True and terms.allow_reuse is False
    assert terms.provider_id == "x402-base-usdc" and terms.provider == "x402_facilitator"
    assert terms.qps == 2 and terms.requires_api_key is False


def test_a_service_override_changes_only_that_service() -> None:
    terms = parse_operator_terms({"services": {"face-detection": {"amountCents": 0, "qps": 5}}}, IDS)
    assert terms.for_service("face-detection").amount_cents == 0
    assert terms.for_service("face-detection").qps == 5
    assert terms.for_service("face-comparison").amount_cents == 20


def test_overrides_inherit_the_operator_defaults() -> None:
    raw = {"defaults": {"amountCents": 50}, "services": {"face-detection": {"requiresApiKey": True}}}
    terms = parse_operator_terms(raw, IDS).for_service("face-detection")
    assert terms.amount_cents == 50 and terms.requires_api_key is True


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"services": {"face-detectoin": {"amountCents": 1}}}, "unknown service ids"),
        ({"defaults": {"amountCent": 1}}, "unknown field"),
        ({"defaults": {"amountCents": -1}}, "amountCents"),
        ({"defaults": {"maxCalls": 0}}, "maxCalls"),
        ({"defaults": {"qps": "fast"}}, "qps"),
        ({"pricing": {}}, "unknown sections"),
    ],
)
def test_bad_terms_are_refused_with_a_clear_message(raw: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        parse_operator_terms(raw, IDS)
