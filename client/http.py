"""Server402: a small synchronous client of the server402 HTTP API, on httpx.

    with Server402("http://127.0.0.1:8402", payment_token=token) as client:
        answer = client.call("face-detection", {"ImageURL": url})   # waits, following a 202 by long polls
        answer.result                                                 # the tool's envelope, or None
        view = client.submit_batch(items, idempotency_key="...")     # {"batchId", "status", ...}
        for line in client.batch_results(view["batchId"]): ...       # one dict per finished item

Credentials: an API key (`Authorization: Bearer`) and payment tokens (`X-Payment-Token`, comma-separated for a
batch paying several services) go with every request; they are never logged, printed or put in an error.
Every refusal or failure raises ApiError (client/errors.py). Answers of 429 and 503 are retried after
their `Retry-After` (at most `retries` times, each wait at most `max_retry_wait_s`); nothing else is retried.
Proxies from the environment are ignored (`trust_env=False`).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from client.errors import ApiError, error_of, job_error, unreachable
from client.wallet import Wallet

DEFAULT_URL = "http://127.0.0.1:8402"
MAX_SERVER_WAIT_S = 60  # the API's longest blocking wait or long poll (SERVER402_WAIT_MAX_S default)
RETRIED = frozenset({429, 503})
FINISHED_JOB = frozenset({"succeeded", "failed", "canceled", "expired"})
FINISHED_BATCH = frozenset({"completed", "canceled"})
JSONL = "application/x-ndjson"

JSON = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """A tool call's outcome: `result` is the tool's envelope once it succeeded; `job` is the job view when the
    call went through a job that is still running (or was followed until it finished), else None."""

    result: Any | None
    job: JSON | None

    @property
    def done(self) -> bool:
        return self.result is not None


class Server402:
    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        payment_token: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        max_retry_wait_s: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait_s = max_retry_wait_s
        headers = {"User-Agent": "server402-client/0.1", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if payment_token:
            headers["X-Payment-Token"] = payment_token
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Server402:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------ tool calls and jobs

    def call(
        self,
        tool: str,
        params: Mapping[str, Any],
        *,
        wait: float = 60.0,
        respond_async: bool = False,
        idempotency_key: str | None = None,
        wallet: Wallet | None = None,
    ) -> Answer:
        """Call a tool, waiting up to `wait` seconds in all for its result: a blocking wait on the call, then
        long polls of its job. With `wallet`, a 402 is paid with x402 and the call sent again. Every call carries
        an Idempotency-Key (a random one unless given), so a retry after a 503 or a lost answer never pays twice."""
        started = time.monotonic()
        prefer = "respond-async" if respond_async else f"wait={min(math.ceil(wait), MAX_SERVER_WAIT_S)}"
        key = idempotency_key or f"s402-call-{uuid.uuid4().hex}"
        headers = {"Content-Type": "application/json", "Prefer": prefer, "Idempotency-Key": key}
        body = json.dumps(dict(params), ensure_ascii=False).encode()
        path = f"/api/tools/{_segment(tool)}"
        response = self._send("POST", path, content=body, headers=headers, wait_s=wait)
        if response.status_code == 402 and wallet is not None:
            headers.update(wallet.pay(response))
            response = self._send("POST", path, content=body, headers=headers, wait_s=wait)
        if response.status_code == 200:
            return Answer(result=_json(response), job=None)
        if response.status_code != 202:
            raise error_of(response)
        view = _json(response)
        if respond_async:
            return Answer(result=None, job=view)
        return self._follow(view, started + wait)

    def _follow(self, view: JSON, deadline: float) -> Answer:
        while view.get("status") not in FINISHED_JOB and (left := deadline - time.monotonic()) > 0:
            view = self.job(str(view["jobId"]), wait=min(left, MAX_SERVER_WAIT_S))
        if view.get("status") == "succeeded":
            return Answer(result=view.get("result"), job=view)
        if view.get("status") in FINISHED_JOB:
            raise job_error(view)
        return Answer(result=None, job=view)

    def job(self, job_id: str, *, wait: float = 0) -> JSON:
        """The job's view; with `wait`, once it finishes or after `wait` seconds (at most 60)."""
        params = {"wait": f"{min(wait, MAX_SERVER_WAIT_S):g}"} if wait > 0 else None
        return self._json("GET", f"/api/jobs/{_segment(job_id)}", params=params, wait_s=wait)

    def cancel_job(self, job_id: str) -> JSON:
        """Cancel a queued job (at once) or ask a running one to stop; a finished job is an ApiError (409)."""
        return self._json("DELETE", f"/api/jobs/{_segment(job_id)}")

    # ------------------------------------------------------------ payments

    def buy(self, service_id: str, calls: int, wallet: Wallet) -> JSON:
        """Buy `calls` calls of a service with x402: the payment view, whose `token` pays for them."""
        path, body = "/api/payments", {"serviceId": service_id, "calls": calls}
        response = self._send("POST", path, json=body)
        if response.status_code == 402:
            response = self._send("POST", path, json=body, headers=wallet.pay(response))
        if response.status_code not in (200, 201):
            raise error_of(response)
        return _json(response)

    def payment(self, payment_id: str) -> JSON:
        return self._json("GET", f"/api/payments/{_segment(payment_id)}")

    # ------------------------------------------------------------ batches

    def submit_batch(
        self,
        items: Iterable[Mapping[str, Any]] | bytes,
        *,
        idempotency_key: str | None = None,
        webhook: str | None = None,
        webhook_events: Iterable[str] | None = None,
    ) -> JSON:
        """Submit items `{customId, serviceId, input}` (or their JSON lines, as bytes) as one batch: its view.
        The same Idempotency-Key and the same bytes return the batch made the first time, charging nothing."""
        body = items if isinstance(items, bytes) else b"".join(_json_line(item) for item in items)
        headers = {"Content-Type": JSONL}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        params: dict[str, str] = {}
        if webhook:
            params["webhook"] = webhook
        if webhook_events is not None:
            params["webhookEvents"] = ",".join(webhook_events)
        return self._json("POST", "/api/batches", content=body, headers=headers, params=params or None)

    def batch(self, batch_id: str, *, wait: float = 0) -> JSON:
        """The batch's view; with `wait`, once it has finished or after `wait` seconds (at most 60)."""
        params = {"wait": f"{min(wait, MAX_SERVER_WAIT_S):g}"} if wait > 0 else None
        return self._json("GET", f"/api/batches/{_segment(batch_id)}", params=params, wait_s=wait)

    def batch_results(self, batch_id: str, *, offset: int = 0) -> Iterator[JSON]:
        """The batch's finished items in completion order, after the first `offset` (read as they stream in)."""
        return (json.loads(line) for line in self.batch_result_lines(batch_id, offset=offset))

    def batch_result_lines(self, batch_id: str, *, offset: int = 0) -> Iterator[str]:
        """The same results as the server's JSON text, one line each."""
        path, params = f"/api/batches/{_segment(batch_id)}/results", {"offset": str(offset)}
        for attempt in range(self.retries + 1):
            try:
                with self._http.stream("GET", path, params=params) as response:
                    if response.status_code in RETRIED and attempt < self.retries:
                        response.read()
                        self._pause(response)
                        continue
                    if response.status_code != 200:
                        response.read()
                        raise error_of(response)
                    yield from (line for line in response.iter_lines() if line.strip())
                    return
            except httpx.TransportError as exc:
                raise unreachable(self.base_url, exc) from None

    def cancel_batch(self, batch_id: str) -> JSON:
        """Cancel what has not started (given back); the batch's view."""
        return self._json("DELETE", f"/api/batches/{_segment(batch_id)}")

    # ------------------------------------------------------------ plumbing

    def _json(self, method: str, path: str, *, wait_s: float = 0, **kwargs: Any) -> JSON:
        response = self._send(method, path, wait_s=wait_s, **kwargs)
        if not 200 <= response.status_code < 300:
            raise error_of(response)
        return _json(response)

    def _send(self, method: str, path: str, *, wait_s: float = 0, **kwargs: Any) -> httpx.Response:
        """One request, sent again after a 429 or 503's Retry-After (bounded)."""
        timeout = self.timeout + min(wait_s, MAX_SERVER_WAIT_S)
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, timeout=timeout, **kwargs)
            except httpx.TransportError as exc:
                raise unreachable(self.base_url, exc) from None
            if response.status_code not in RETRIED or attempt == self.retries:
                return response
            self._pause(response)
        raise AssertionError("unreachable")  # the loop always returns

    def _pause(self, response: httpx.Response) -> None:
        raw = response.headers.get("Retry-After", "1")
        try:
            delay = float(raw)
        except ValueError:
            delay = 1.0
        time.sleep(min(max(delay, 0.0), self.max_retry_wait_s))


def _json(response: httpx.Response) -> JSON:
    try:
        body = response.json()
    except ValueError:
        raise ApiError(response.status_code, "bad_response", "the server's answer is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(response.status_code, "bad_response", "the server's answer is not a JSON object", body)
    return body


def _json_line(item: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(item), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _segment(value: str) -> str:
    """A path segment: ids are sent as they are, anything that could change the path is escaped."""
    return quote(value, safe="")
