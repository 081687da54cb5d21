"""create_facilitator_app(config): a local x402 facilitator (aiohttp) that settles on the in-memory ledger.

The x402 facilitator HTTP API, as x402.http.HTTPFacilitatorClient sends and parses it:

    GET  /supported  {"kinds": [{"x402Version": 2, "scheme": "exact", "network": <configured>}], "extensions": [],
                      "signers": {"eip155:*": [FACILITATOR_ADDRESS]}}
    POST /verify     {"x402Version": 2, "paymentPayload", "paymentRequirements"}
                     -> 200 {"isValid", "payer", "invalidReason"?, "invalidMessage"?}
    POST /settle     the same body -> 200 {"success", "payer", "transaction", "network", "errorReason"?, ...}

The judgement is the SDK's own: x402FacilitatorSync with its exact EVM scheme registered for the configured network
(v2 only), LedgerSigner as its chain, run in a worker thread. An invalid payment is still a 200 with isValid/success
false and the SDK's reason code (HTTPFacilitatorClient raises on any other status); a payment for a scheme or network
not served gets the spec's "unsupported_scheme" / "invalid_network" (checked here: the SDK routes every eip155 network
to a scheme registered for one).
A body that is not JSON, not an x402 v2 payment or not an EIP-3009 authorization (Permit2 is not served) is a 400
{"error": "bad_request", "message": ...}; the middleware turns every raised error into an answer (injected faults
answer for themselves: sandbox/facilitator/faults.py).

Admin endpoints, for tests and `make run` (amounts in atomic units: 1 USDC = 1_000_000):

    GET  /_facilitator/health                      {"ok": true, "network", "asset", "facilitator", "demoWallet"}
    GET  /_facilitator/balances?address=0x..       {"address", "balance"}
    POST /_facilitator/fund {"address", "amount"}  mint amount to address -> {"address", "balance"}
    GET  /_facilitator/transfers                   [{"from", "to", "value", "nonce", "transaction", "at"}, ...]
    GET  /_facilitator/counts                      {"verify": n, "settle": n, "outcomes": {"verify": {...},
                                                   "settle": {...}}}: requests received (any answer, faults too),
                                                   and each one's outcome (the names: sandbox/facilitator/counts.py)
    GET    /_facilitator/faults                    {"faults": {"verify": spec | null, "settle": spec | null}},
                                                   each spec in full with remainingTimes (null: no limit)
    PUT    /_facilitator/faults {"verify"?: spec, "settle"?: spec}   replace both (left out or null: no fault)
    DELETE /_facilitator/faults                    no faults; both answer as GET does

A fault spec (sandbox/facilitator/faults.py; a bad one is a 400 naming the field), every key optional:

    {"mode": "ok" | "settle_then_delay" | "settle_then_drop" | "settle_then_5xx" | "5xx" | "refuse"  (default ok),
     "latencyMs": {"fixed": ms} | {"uniform": [low, high]} | {"lognormal": {"median": ms, "sigma": s}},
     "delayS": s         (settle_then_delay only, and required by it: 0 < s <= 3600),
     "status5xx": 500 | 502 | 503 | 504   (the 5xx modes only; default 502),
     "rate": 0..1        (the share of requests hit, default 1),  "times": N  (only the next N hits),
     "seed": int}        (seeds the spec's draws: rate and latency; default: unseeded)

A request the spec hits waits latencyMs, then, by mode (verify takes ok, 5xx and refuse only):

    ok                 answers normally
    settle_then_delay  settles for real, answers the real result only after delayS (a client that gives up first
                       finds the transfer done; asking again answers the original result, see below)
    settle_then_drop   settles for real, then closes the connection (FIN) without an answer: the client sees the
                       server disconnect ("Server disconnected without sending a response")
    settle_then_5xx    settles for real, then answers status5xx {"error": "bad_gateway", "message": ...}
    5xx                answers status5xx with that JSON body, the payment neither judged nor settled
    refuse             resets the connection (RST) without reading the body or answering: a connection error

The settle_then_* modes apply whatever the settle came to (a refused payment's answer is lost the same way); a body
that is not a payment is still a 400 in every mode but 5xx and refuse. A request the spec does not hit (rate, times
used up) is served normally, without the latency.

Settlement cache (sandbox/facilitator/settlements.py): a /settle of a payment already settled (same paymentPayload
and paymentRequirements, by the digest of their canonical JSON) answers the original result again, success and
transaction included, for the life of the process, instead of the SDK's nonce-already-used failure; identical
settles in flight at once settle once. Another payload that reuses a used nonce is still the SDK's to refuse.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

import jwt
import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ValidationError
from x402 import PaymentPayload, PaymentRequirements, SettleResponse, VerifyResponse, x402FacilitatorSync
from x402.mechanisms.evm.exact import ExactEvmFacilitatorScheme

from sandbox.facilitator.config import (
    DEMO_WALLET_ADDRESS,
    FACILITATOR_ADDRESS,
    STARTING_BALANCE,
    FacilitatorConfig,
)
from sandbox.facilitator.counts import Counts
from sandbox.facilitator.faults import (
    Decision,
    Endpoint,
    Faults,
    FaultTable,
    answer_5xx,
    drop_connection,
    reset_connection,
)
from sandbox.facilitator.ledger import Ledger, LedgerSigner, Token
from sandbox.facilitator.settlements import SettlementCache, Source, payment_digest

MAX_BODY_BYTES = 256 * 1024
log = structlog.get_logger("facilitator")

CONFIG = web.AppKey("config", FacilitatorConfig)
LEDGER = web.AppKey("ledger", Ledger)
FACILITATOR = web.AppKey("facilitator", x402FacilitatorSync)
COUNTS = web.AppKey("counts", Counts)
FAULTS = web.AppKey("faults", FaultTable)
SETTLEMENTS = web.AppKey("settlements", SettlementCache)
OUTCOME = web.RequestKey("outcome", str)

_ENDPOINT_OF: dict[str, Endpoint] = {"/verify": "verify", "/settle": "settle"}

Address = Annotated[str, msgspec.Meta(pattern="^0x[0-9a-fA-F]{40}$")]
Uint = Annotated[str, msgspec.Meta(pattern="^[0-9]{1,78}$")]
Bytes32 = Annotated[str, msgspec.Meta(pattern="^0x[0-9a-fA-F]{64}$")]
HexBytes = Annotated[str, msgspec.Meta(pattern="^0x([0-9a-fA-F]{2})*$")]


class BadRequest(Exception):
    """Not something a facilitator can judge: answered 400 with this message."""


class _Envelope(msgspec.Struct, rename="camel"):
    x402_version: int
    payment_payload: dict[str, Any]
    payment_requirements: dict[str, Any]


class _Authorization(
    msgspec.Struct, rename={"sender": "from", "valid_after": "validAfter", "valid_before": "validBefore"}
):
    sender: Address
    to: Address
    value: Uint
    valid_after: Uint
    valid_before: Uint
    nonce: Bytes32


class _Eip3009Payload(msgspec.Struct):
    authorization: _Authorization
    signature: HexBytes | None = None


class _Amount(msgspec.Struct):
    """The requirement fields the SDK parses before it can answer "invalid" (it raises on them instead)."""

    asset: Address
    amount: Uint


class _Fund(msgspec.Struct):
    address: Address
    amount: Annotated[int, msgspec.Meta(gt=0)]


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_fund_decoder = msgspec.json.Decoder(_Fund)
_faults_decoder = msgspec.json.Decoder(Faults)
_encoder = msgspec.json.Encoder()


def create_facilitator_app(config: FacilitatorConfig) -> web.Application:
    app = web.Application(middlewares=[facilitator_middleware], client_max_size=MAX_BODY_BYTES)
    app[CONFIG] = config
    app.cleanup_ctx.append(ledger_ctx)
    app.router.add_get("/supported", get_supported)
    app.router.add_post("/verify", post_verify)
    app.router.add_post("/settle", post_settle)
    app.router.add_get("/_facilitator/health", get_health)
    app.router.add_get("/_facilitator/balances", get_balance)
    app.router.add_post("/_facilitator/fund", post_fund)
    app.router.add_get("/_facilitator/transfers", get_transfers)
    app.router.add_get("/_facilitator/counts", get_counts)
    app.router.add_get("/_facilitator/faults", get_faults)
    app.router.add_put("/_facilitator/faults", put_faults)
    app.router.add_delete("/_facilitator/faults", delete_faults)
    app[COUNTS] = Counts()
    app[FAULTS] = FaultTable()
    app[SETTLEMENTS] = SettlementCache()
    return app


async def ledger_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    ledger = Ledger(Token(config.asset, config.asset_name, config.asset_version, config.chain_id))
    for wallet in config.funded_wallets:
        ledger.fund(wallet, STARTING_BALANCE)
    facilitator = x402FacilitatorSync()
    facilitator.register([config.network], ExactEvmFacilitatorScheme(LedgerSigner(ledger, FACILITATOR_ADDRESS)))
    app[LEDGER] = ledger
    app[FACILITATOR] = facilitator
    yield


@web.middleware
async def facilitator_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        _authenticate(request)
        response = await handler(request)
    except BadRequest as exc:
        response = json_response({"error": "bad_request", "message": str(exc)}, status=400)
    except web.HTTPException as exc:
        code = exc.reason.lower().replace(" ", "_")
        response = json_response(
            {"error": code, "message": f"{exc.reason}: {request.method} {request.path}"}, exc.status
        )
    except asyncio.CancelledError:  # the client hung up (handler_cancellation)
        endpoint = _ENDPOINT_OF.get(request.path)
        if endpoint is not None and OUTCOME not in request:
            _record(request, endpoint, "hung_up")
        log.info(
            "facilitator.request", method=request.method, path=request.path, status=499, outcome=request.get(OUTCOME)
        )
        raise
    except Exception:
        log.exception("facilitator.unexpected_error", path=request.path)
        response = json_response({"error": "internal_error", "message": "the facilitator failed; see its log"}, 500)
    log.info(
        "facilitator.request",
        method=request.method,
        path=request.path,
        status=response.status,
        outcome=request.get(OUTCOME),
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return response


def _authenticate(request: web.Request) -> None:
    """With a CDP key configured, the facilitator endpoints want its JWT (Coinbase's scheme), 401 otherwise."""
    config = request.app[CONFIG]
    if not config.cdp_public_key_pem or request.path not in ("/supported", "/verify", "/settle"):
        return
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    try:
        claims = jwt.decode(
            token, config.cdp_public_key_pem, algorithms=["ES256", "EdDSA"], options={"require": ["exp", "nbf"]}
        )
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise web.HTTPUnauthorized(reason=f"CDP JWT refused: {exc}") from None
    wanted = f"{request.method} {request.host}{request.path}"
    if header.get("kid") != config.cdp_key_id or claims.get("sub") != config.cdp_key_id or claims.get("iss") != "cdp":
        raise web.HTTPUnauthorized(reason="CDP JWT of another key")
    if claims.get("uris") != [wanted]:
        raise web.HTTPUnauthorized(reason=f"CDP JWT not for {wanted}")


async def get_supported(request: web.Request) -> web.Response:
    return _model_response(request.app[FACILITATOR].get_supported())


async def post_verify(request: web.Request) -> web.StreamResponse:
    fault = await _meet_fault(request, "verify")
    if fault.mode == "refuse":
        _record(request, "verify", "refused")
        return reset_connection(request)
    raw = await request.read()
    if fault.mode == "5xx":
        _record(request, "verify", "5xx")
        return answer_5xx("verify", fault.status, "without judging the payment")
    payload, requirements = _read_payment(request, "verify", raw)
    refused = _not_served(request.app[CONFIG], payload, requirements)
    if refused:
        result = VerifyResponse(is_valid=False, invalid_reason=refused, payer=_payer(payload))
    else:
        result = await asyncio.to_thread(request.app[FACILITATOR].verify, payload, requirements)
    _record(request, "verify", "valid" if result.is_valid else "invalid", result.invalid_reason)
    return _model_response(result)


async def post_settle(request: web.Request) -> web.StreamResponse:
    fault = await _meet_fault(request, "settle")
    if fault.mode == "refuse":
        _record(request, "settle", "refused")
        return reset_connection(request)
    raw = await request.read()
    if fault.mode == "5xx":
        _record(request, "settle", "5xx")
        return answer_5xx("settle", fault.status, "without settling")
    payload, requirements = _read_payment(request, "settle", raw)
    result, source = await _settle(request.app, payload, requirements)
    detail = result.transaction if result.success else result.error_reason
    match fault.mode:
        case "settle_then_drop":
            _record(request, "settle", f"{source}_then_dropped", detail)
            return drop_connection(request)
        case "settle_then_5xx":
            _record(request, "settle", f"{source}_then_5xx", detail)
            return answer_5xx("settle", fault.status, f"after settling ({source})")
        case "settle_then_delay":
            _record(request, "settle", f"{source}_then_delayed", detail)
            await asyncio.sleep(fault.delay_s)
        case _:
            _record(request, "settle", source, detail)
    return _model_response(result)


async def _settle(
    app: web.Application, payload: PaymentPayload, requirements: PaymentRequirements
) -> tuple[SettleResponse, Source]:
    refused = _not_served(app[CONFIG], payload, requirements)
    if refused:
        network = payload.accepted.network
        failure = SettleResponse(
            success=False, error_reason=refused, payer=_payer(payload), transaction="", network=network
        )
        return failure, "failed"
    run = partial(app[FACILITATOR].settle, payload, requirements)
    return await app[SETTLEMENTS].settle(payment_digest(payload, requirements), run)


async def _meet_fault(request: web.Request, endpoint: Endpoint) -> Decision:
    """Count the request, draw its fault and wait out the fault's latency."""
    request.app[COUNTS].receive(endpoint)
    fault = request.app[FAULTS].decide(endpoint)
    if fault.latency_s > 0:
        await asyncio.sleep(fault.latency_s)
    return fault


def _read_payment(request: web.Request, endpoint: Endpoint, raw: bytes) -> tuple[PaymentPayload, PaymentRequirements]:
    try:
        return _payment(raw)
    except BadRequest:
        _record(request, endpoint, "bad_request")
        raise


def _record(request: web.Request, endpoint: Endpoint, outcome: str, detail: str | None = None) -> None:
    request.app[COUNTS].record(endpoint, outcome)
    request[OUTCOME] = f"{outcome} {detail}" if detail else outcome


async def get_health(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return json_response(
        {
            "ok": True,
            "network": config.network,
            "asset": request.app[LEDGER].token.address,
            "facilitator": FACILITATOR_ADDRESS,
            "demoWallet": DEMO_WALLET_ADDRESS,
        }
    )


async def get_balance(request: web.Request) -> web.Response:
    try:
        address = msgspec.convert(request.query.get("address", ""), Address)
    except msgspec.ValidationError:
        raise BadRequest("?address= must be a 0x address (40 hex digits)") from None
    address = to_checksum_address(address)
    return json_response({"address": address, "balance": request.app[LEDGER].balance_of(address)})


async def post_fund(request: web.Request) -> web.Response:
    try:
        fund = _fund_decoder.decode(await request.read())
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise BadRequest(f'expected {{"address": "0x...", "amount": <positive int>}}: {exc}') from None
    address = to_checksum_address(fund.address)
    return json_response({"address": address, "balance": request.app[LEDGER].fund(address, fund.amount)})


async def get_counts(request: web.Request) -> web.Response:
    return json_response(request.app[COUNTS].to_json())


async def get_faults(request: web.Request) -> web.Response:
    return json_response({"faults": request.app[FAULTS].describe()})


async def put_faults(request: web.Request) -> web.Response:
    try:
        faults = _faults_decoder.decode(await request.read())
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise BadRequest(f"bad fault spec: {exc}") from None
    request.app[FAULTS].put(faults)
    return await get_faults(request)


async def delete_faults(request: web.Request) -> web.Response:
    request.app[FAULTS].clear()
    return await get_faults(request)


async def get_transfers(request: web.Request) -> web.Response:
    return json_response([transfer.to_json() for transfer in request.app[LEDGER].transfers()])


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(body), status=status, content_type="application/json", charset="utf-8")


def _model_response(model: BaseModel) -> web.Response:
    return json_response(model.model_dump(by_alias=True, exclude_none=True, mode="json"))


def _payment(raw: bytes) -> tuple[PaymentPayload, PaymentRequirements]:
    """The body as the SDK's models, once it holds everything the SDK would otherwise crash on."""
    try:
        envelope = _envelope_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"expected JSON {{x402Version, paymentPayload, paymentRequirements}}: {exc}") from None
    if envelope.x402_version != 2 or envelope.payment_payload.get("x402Version") != 2:
        raise BadRequest("only x402Version 2 payments are served")
    try:
        payload = PaymentPayload.model_validate(envelope.payment_payload)
        requirements = PaymentRequirements.model_validate(envelope.payment_requirements)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadRequest(f"not an x402 v2 payment: {exc.title}.{where}: {first['msg']}") from None
    try:
        msgspec.convert(payload.payload, _Eip3009Payload)
        msgspec.convert(envelope.payment_requirements, _Amount)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"not an EIP-3009 payment (the only kind served): {exc}") from None
    return payload, requirements


def _payer(payload: PaymentPayload) -> str:
    return str(payload.payload["authorization"]["from"])


def _not_served(config: FacilitatorConfig, payload: PaymentPayload, requirements: PaymentRequirements) -> str | None:
    """The spec's reason for a payment this facilitator does not serve; None when it is the SDK's to judge.

    Checked here because the SDK would take it: registering ["eip155:8453"] derives the route pattern "eip155:*".
    """
    if payload.accepted.scheme != "exact" or requirements.scheme != "exact":
        return "unsupported_scheme"
    if payload.accepted.network != config.network or requirements.network != config.network:
        return "invalid_network"
    return None
