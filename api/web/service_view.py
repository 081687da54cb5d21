"""What the service page shows, built from a `Service`: price, payment steps, parameters, curl and MCP examples.

Pure functions from catalog data to text or escaped HTML (`Markup`); the route only picks the service.
"""

from __future__ import annotations

import shlex
from typing import Any

import msgspec

from api.web.templating import Markup, html, join, render
from shared.models import Pricing, Service

MCP_PATH = "/mcp"
TOKEN_VARIABLE = "SERVER402_TOKEN"
API_KEY_STEP = Markup("Send an API key: <code>Authorization: Bearer &lt;key&gt;</code> or <code>X-API-Key</code>.")


def pretty_json(value: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def price_text(pricing: Pricing) -> str:
    if pricing.amount_cents == 0:
        return "Free"
    return f"{pricing.currency} {pricing.amount_cents / 100:.2f} per call"


def billing_text(pricing: Pricing) -> str:
    if pricing.amount_cents == 0:
        return "no payment needed"
    calls = "1 call" if pricing.max_calls == 1 else f"{pricing.max_calls} calls"
    return f"billed {pricing.billing_mode.replace('_', ' ')}; one payment buys {calls}, or more in a bundle"


def curl_example(service: Service, base_url: str) -> str:
    lines = [
        f"curl -s -X POST {shlex.quote(base_url + service.endpoint)}",
        "-H 'Content-Type: application/json'",
    ]
    if service.pricing.amount_cents > 0:
        lines.append(f'-H "X-Payment-Token: ${TOKEN_VARIABLE}"')
    lines.append(f"-d {shlex.quote(pretty_json(service.example_request))}")
    return " \\\n  ".join(lines)


def mcp_request(service: Service) -> dict[str, Any]:
    """The JSON-RPC `tools/call` body an MCP client sends to `/mcp` for this tool."""
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": service.discovery.tool_name, "arguments": service.example_request},
    }


def mcp_curl_example(service: Service, base_url: str) -> str:
    body = msgspec.json.encode(mcp_request(service)).decode()
    return " \\\n  ".join(
        [
            f"curl -s -X POST {shlex.quote(base_url + MCP_PATH)}",
            "-H 'Content-Type: application/json'",
            "-H 'Accept: application/json, text/event-stream'",
            f"-d {shlex.quote(body)}",
        ]
    )


def payment_steps(service: Service) -> Markup:
    if service.pricing.amount_cents == 0:
        steps = [html("This tool is free: call it directly, no payment needed.")]
    else:
        steps = _paid_steps(service)
    if service.requires_api_key:
        steps.insert(0, API_KEY_STEP)
    return join([html("<li>{}</li>", step) for step in steps])


def _paid_steps(service: Service) -> list[Markup]:
    body = msgspec.json.encode({"serviceId": service.id, "calls": 10}).decode()
    return [
        html(
            "Call <code>POST {}</code> without payment: the answer is <strong>402</strong> with the payment terms "
            "in its body and an x402 v2 <code>PAYMENT-REQUIRED</code> header.",
            service.endpoint,
        ),
        html(
            "Pay inline with x402: send the same request again with a <code>PAYMENT-SIGNATURE</code> header "
            "(x402 clients do this by themselves); the answer carries <code>PAYMENT-RESPONSE</code>."
        ),
        html(
            "Or buy a token: <code>POST /api/payments {}</code> answers 402 with the x402 terms for that many calls; "
            "send it again with <code>PAYMENT-SIGNATURE</code> to get <strong>201</strong> and a <code>token</code>.",
            body,
        ),
        html(
            "Retry the call with <code>X-Payment-Token: &lt;token&gt;</code> (MCP: the <code>paymentToken</code> "
            "argument); each call uses one of the calls bought."
        ),
    ]


def parameters_table(schema: dict[str, Any]) -> Markup:
    properties: dict[str, Any] = schema.get("properties", {})
    if not properties:
        return html("<p>This tool takes no parameters: send <code>{{}}</code>.</p>")
    required = set(schema.get("required", []))
    rows = [
        html(
            "<tr><th scope='row'><code>{}</code></th><td>{}</td><td>{}</td><td>{}</td></tr>",
            name,
            type_text(spec),
            "required" if name in required else "optional",
            spec.get("description", ""),
        )
        for name, spec in properties.items()
    ]
    groups = [
        html("<li>at least one of {}</li>", join([html("<code>{}</code>", n) for n in names], ", "))
        for names in alternatives(schema)
    ]
    table = html(
        "<div class='table-wrap'><table><caption class='visually-hidden'>Parameters</caption>"
        "<thead><tr><th scope='col'>Parameter</th><th scope='col'>Type</th><th scope='col'>Required</th>"
        "<th scope='col'>Description</th></tr></thead><tbody>{}</tbody></table></div>",
        join(rows),
    )
    return join([table, html("<ul class='constraints'>{}</ul>", join(groups))]) if groups else table


def type_text(spec: dict[str, Any]) -> str:
    kind = str(spec.get("type", "any"))
    if kind == "array":
        kind = f"array of {spec.get('items', {}).get('type', 'any')}"
    if "enum" in spec:
        kind += " (" + ", ".join(str(v) for v in spec["enum"]) + ")"
    return kind


def alternatives(schema: dict[str, Any]) -> list[list[str]]:
    """Groups of parameters of which at least one is needed (`anyOf` of `required`, alone or inside `allOf`)."""
    groups = [schema] if "anyOf" in schema else []
    groups += [part for part in schema.get("allOf", []) if "anyOf" in part]
    found: list[list[str]] = []
    for group in groups:
        names = [name for option in group["anyOf"] for name in option.get("required", [])]
        if names:
            found.append(names)
    return found


def bullet_list(items: list[str]) -> Markup:
    return join([html("<li>{}</li>", item) for item in items])


def service_page(service: Service, base_url: str) -> Markup:
    return render(
        "service",
        service_id=service.id,
        name=service.name,
        name_zh=service.name_zh,
        legacy_id=service.internal_service_id,
        tool_name=service.discovery.tool_name,
        category=service.category,
        tags=", ".join(service.tags),
        action=f"{service.upstream.product} {service.upstream.version} {service.upstream.action}",
        description=service.description,
        description_zh=service.description_zh,
        price=price_text(service.pricing),
        billing=billing_text(service.pricing),
        payment_steps=payment_steps(service),
        endpoint=service.endpoint,
        curl=curl_example(service, base_url),
        mcp_body=pretty_json(mcp_request(service)),
        mcp_curl=mcp_curl_example(service, base_url),
        parameters=parameters_table(service.input_schema),
        input_schema=pretty_json(service.input_schema),
        example_request=pretty_json(service.example_request),
        example_response=pretty_json(service.example_response),
        use_cases=bullet_list(service.use_cases),
        limitations=bullet_list(service.limitations),
        response_time=service.typical_response_time,
    )
