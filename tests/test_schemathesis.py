"""Schemathesis against /openapi.json: generated requests, valid and invalid, to the real processes (API, worker,
sandbox upstream, Redis). No answer is a 5xx, and every answer (status, content type, headers, body) is one the
document describes. A bounded, derandomized number of examples per operation; the tools are sampled (see TOOLS).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import schemathesis
from stack import Stack
from support import build_catalog

from api.openapi import build_openapi
from scripts.embedded_redis import EmbeddedRedis
from shared.config import Settings

# Free tools run (a worker calls the sandbox), so their 200s are checked against each output schema; one priced
# tool answers 402. Every operation that is not a tool is tested.
PRICED = "face-comparison"
OPERATOR_TOML = f"""
[defaults]
amountCents = 0
qps = 1000

[services.{PRICED}]
amountCents = 20
"""
TERMS: dict[str, Any] = {"defaults": {"amountCents": 0, "qps": 1000}, "services": {PRICED: {"amountCents": 20}}}
# A sample of the 44 tools (88 operations): URL parameters, task arrays, face databases, video, the Cloudauth
# product, a priced one, and one legacy path.
TOOLS = (
    "face_detection",
    "face_detection_legacy",
    "face_comparison",
    "face_liveness_detection",
    "face_database_create",
    "face_database_search",
    "action_recognition",
    "face_liveness_v2",
    "face_fusion",
)
# Every default check but one:
# - positive_data_acceptance wants every schema-valid request accepted, but some refusals cannot be written in a
#   schema: an image URL on a private address, webhookEvents without a webhook, a face database that does not
#   exist upstream (422). They are documented 400s and 422s instead.
# - negative_data_rejection also takes 402: an unpaid call of a priced tool without its input is how x402
#   discovery probes a resource, and gets the payment terms (input is checked before anything is paid).
# ASCII text only: a non-ASCII character percent-encodes to up to 12 bytes in a query string, so a 2,048-character
# webhook URL could pass aiohttp's 8,190-byte request line, which test_hostile.py covers on its own.
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 402,
        "generation": {"max-examples": 5, "deterministic": True, "codec": "ascii"},
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {
                "expected-statuses": [
                    "400",
                    "401",
                    "402",
                    "403",
                    "404",
                    "405",
                    "406",
                    "409",
                    "415",
                    "422",
                    "428",
                    "429",
                ]
            },
        },
        "request-timeout": 20,
    }
)


@schemathesis.serializer("application/x-ndjson")
def json_lines(_: schemathesis.SerializationContext, value: Any) -> bytes:
    """A batch as JSON lines: the document describes it as the array of its lines."""
    return b"".join(msgspec.json.encode(line) + b"\n" for line in (value if isinstance(value, list) else [value]))


catalog = build_catalog(TERMS)
tool_operations = {service.discovery.tool_name for service in catalog} | {
    f"{service.discovery.tool_name}_legacy" for service in catalog
}
schema = schemathesis.openapi.from_dict(build_openapi(catalog, Settings.from_env({})), config=CONFIG).exclude(
    operation_id=sorted(tool_operations - set(TOOLS))
)


@pytest.fixture(scope="module")
def live(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("schemathesis")
    (directory / "operator.toml").write_text(OPERATOR_TOML)
    env = {
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/11",  # a database of its own
        "SERVER402_OPERATOR_FILE": str(directory / "operator.toml"),
        "SERVER402_SANDBOX_QPS": "100000",
        "SERVER402_WAIT_DEFAULT_S": "10",
        "SERVER402_LOG_LEVEL": "warning",
        "SERVER402_SANDBOX_LOG_LEVEL": "warning",
    }
    stack = Stack(Path(directory), env).start()
    yield stack
    stack.stop()


def test_the_served_document_is_the_one_tested(live: Stack) -> None:
    with urllib.request.urlopen(f"{live.url}/openapi.json", timeout=5) as response:
        served = msgspec.json.decode(response.read())
    expected = build_openapi(catalog, Settings.from_env({"SERVER402_PORT": str(live.api_port)}))
    assert served["paths"] == msgspec.json.decode(msgspec.json.encode(expected["paths"]))


@schema.parametrize()
def test_every_answer_is_documented_and_none_is_a_server_error(case: schemathesis.Case, live: Stack) -> None:
    case.call_and_validate(base_url=live.url)
