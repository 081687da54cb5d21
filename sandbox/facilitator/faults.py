"""Fault specs for /verify and /settle, set through PUT /_facilitator/faults (documented in app.py).

One spec per endpoint. A request the spec hits first waits `latencyMs` (the upstream sandbox's distribution,
sandbox/faults.py Latency), then meets its `mode`. Which requests: each draws from the spec's own random.Random
(seeded with `seed` when given, so a sequence of requests always meets the same faults) and is hit when the draw is
below `rate`; `times` (when given) stops the spec after that many hits, and the endpoint behaves normally again.
A request the spec does not hit gets no latency and no fault.
"""

from __future__ import annotations

import http
import random
import socket
import struct
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from sandbox.faults import Latency, Rate

Endpoint = Literal["verify", "settle"]
ENDPOINTS: tuple[Endpoint, ...] = ("verify", "settle")
Mode = Literal["ok", "settle_then_delay", "settle_then_drop", "settle_then_5xx", "5xx", "refuse"]
SETTLE_ONLY = ("settle_then_delay", "settle_then_drop", "settle_then_5xx")
DEFAULT_STATUS_5XX = 502
MAX_DELAY_S = 3600.0
DROPPED = 444  # the status logged for a connection closed without an answer (nginx's "no response"); never sent


class FaultSpec(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True, kw_only=True):
    mode: Mode = "ok"
    latency_ms: Latency | None = None
    delay_s: Annotated[float, msgspec.Meta(gt=0.0, le=MAX_DELAY_S)] | None = None  # settle_then_delay only
    status5xx: Literal[500, 502, 503, 504] | None = None  # the 5xx modes only; default 502
    rate: Rate = 1.0
    times: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if (self.mode == "settle_then_delay") != (self.delay_s is not None):
            raise ValueError("delayS (seconds, > 0) goes with mode settle_then_delay, and only with it")
        if self.status5xx is not None and self.mode not in ("5xx", "settle_then_5xx"):
            raise ValueError("status5xx goes with mode 5xx or settle_then_5xx only")


class Faults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of PUT /_facilitator/faults: an endpoint left out (or null) has no fault."""

    verify: FaultSpec | None = None
    settle: FaultSpec | None = None

    def __post_init__(self) -> None:
        if self.verify is not None and self.verify.mode in SETTLE_ONLY:
            raise ValueError(f"verify: mode {self.verify.mode} is for settle only (verify takes ok, 5xx or refuse)")


@dataclass(frozen=True)
class Decision:
    """What one request meets: wait latency_s, then the mode (delay_s and status for the modes that use them)."""

    mode: Mode
    latency_s: float = 0.0
    delay_s: float = 0.0
    status: int = DEFAULT_STATUS_5XX


NORMAL = Decision("ok")


class _Active:
    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed) if spec.seed is not None else random.Random()
        self.remaining = spec.times

    def decide(self) -> Decision:
        spec = self.spec
        if self.remaining == 0 or (spec.rate < 1.0 and self.rng.random() >= spec.rate):
            return NORMAL
        if self.remaining is not None:
            self.remaining -= 1
        return Decision(
            spec.mode,
            spec.latency_ms.sample_s(self.rng) if spec.latency_ms is not None else 0.0,
            spec.delay_s or 0.0,
            spec.status5xx or DEFAULT_STATUS_5XX,
        )


class FaultTable:
    """The specs in force, per endpoint; each PUT replaces them all (and restarts their draws and `times`)."""

    def __init__(self) -> None:
        self._active: dict[Endpoint, _Active] = {}

    def put(self, faults: Faults) -> None:
        specs: dict[Endpoint, FaultSpec | None] = {"verify": faults.verify, "settle": faults.settle}
        self._active = {endpoint: _Active(spec) for endpoint, spec in specs.items() if spec is not None}

    def clear(self) -> None:
        self._active = {}

    def describe(self) -> dict[str, Any]:
        """{"verify": spec | None, "settle": spec | None}, each spec with remainingTimes (None: no limit)."""
        described: dict[str, Any] = dict.fromkeys(ENDPOINTS)
        for endpoint, active in self._active.items():
            described[endpoint] = {**msgspec.to_builtins(active.spec), "remainingTimes": active.remaining}
        return described

    def decide(self, endpoint: Endpoint) -> Decision:
        active = self._active.get(endpoint)
        return NORMAL if active is None else active.decide()


# ---------------------------------------------------------------- how the modes look on the wire


def answer_5xx(endpoint: Endpoint, status: int, what: str) -> web.Response:
    """The injected 5xx: a JSON error body, as a failing facilitator or a proxy in front of it would answer."""
    code = http.HTTPStatus(status).phrase.lower().replace(" ", "_")
    return web.json_response(
        {"error": code, "message": f"sandbox fault: /{endpoint} answered {status} {what}"}, status=status
    )


def drop_connection(request: web.Request) -> web.Response:
    """Close the connection (FIN) without an answer: the client sees the server disconnect after its request."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=DROPPED)  # aiohttp cannot write it: the connection is gone


def reset_connection(request: web.Request) -> web.Response:
    """Reset the connection (SO_LINGER 0, then abort: an RST), its body unread: a connection error, no answer."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=DROPPED)
