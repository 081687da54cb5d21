"""Counts: what /verify and /settle received and what each request came to, for GET /_facilitator/counts.

Every request has exactly one outcome, counted as soon as it is known (before a delayed answer is sent, or a
connection dropped), so a client that gave up still finds its request counted; an outcome appears once it happens:

    verify   valid | invalid | bad_request | 5xx | refused | hung_up
    settle   settled | failed | replayed (answered from the settlement cache) | bad_request | 5xx | refused | hung_up,
             or <settled|failed|replayed>_then_<delayed|dropped|5xx> for the settle_then_* modes

hung_up: the client went away before the outcome was known (its settle, once started, still runs to the end).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sandbox.facilitator.faults import ENDPOINTS, Endpoint


class Counts:
    def __init__(self) -> None:
        self._received: dict[Endpoint, int] = dict.fromkeys(ENDPOINTS, 0)
        self._outcomes: dict[Endpoint, Counter[str]] = {endpoint: Counter() for endpoint in ENDPOINTS}

    def receive(self, endpoint: Endpoint) -> None:
        self._received[endpoint] += 1

    def record(self, endpoint: Endpoint, outcome: str) -> None:
        self._outcomes[endpoint][outcome] += 1

    def to_json(self) -> dict[str, Any]:
        """{"verify": n, "settle": n, "outcomes": {"verify": {outcome: n}, "settle": {outcome: n}}}."""
        outcomes = {endpoint: dict(sorted(counter.items())) for endpoint, counter in self._outcomes.items()}
        body: dict[str, Any] = {endpoint: self._received[endpoint] for endpoint in ENDPOINTS}
        return body | {"outcomes": outcomes}
