"""The only importer of the Alibaba SDKs: one client per product, `*_with_options_async` calls, errors classified.

Credentials are always passed explicitly and the metadata-service lookup is disabled before the SDK is
imported, so nothing here can reach an address off the machine by accident. SDK retries stay off: the
worker (`workers/tasks.py`) owns every retry decision, using `UpstreamError.retryable`.

Every failure is classified here, once (`classify`, `kind_of`): its kind (shared/failures.py) goes on the
job's error, and the worker, the health worker, the API and the client read it from there.
"""

from __future__ import annotations

import os

os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"  # before the credentials library is imported

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from alibabacloud_cloudauth_intl20220809 import models as cloudauth_models
from alibabacloud_cloudauth_intl20220809.client import Client as CloudauthClient
from alibabacloud_facebody20191230 import models as facebody_models
from alibabacloud_facebody20191230.client import Client as FacebodyClient
from alibabacloud_tea_openapi import models as openapi_models
from alibabacloud_tea_util import models as tea_util_models
from darabonba.runtime import RuntimeOptions as DaraRuntimeOptions
from Tea.exceptions import TeaException, UnretryableException

from shared.config import UpstreamSettings
from shared.failures import OPERATOR_CODES, THROTTLING, UpstreamKind, failure
from shared.metrics import UPSTREAM_CALL, WorkerMetrics
from shared.models import ToolSpec
from workers import transport

# Codes of an upstream that failed (besides any 5xx): retried within the job's deadline, as throttling is.
SERVER_CODE_PREFIXES = ("ServiceUnavailable", "InternalError", "Timeout")


@dataclass(frozen=True)
class UpstreamResult:
    request_id: str
    result: dict[str, Any]


class UpstreamError(Exception):
    """A failed upstream call, cleaned and classified: Alibaba's code and message, never a traceback or a
    credential, and its kind (shared/failures.py)."""

    def __init__(
        self, code: str, message: str, *, status: int | None, kind: UpstreamKind, request_id: str | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.kind: UpstreamKind = kind
        self.request_id = request_id

    @property
    def retryable(self) -> bool:
        return failure(self.kind).retryable

    @property
    def outcome(self) -> str:
        """The metric label: throttled, unavailable (no verdict), server_error or client_error (ours or the input)."""
        return _OUTCOMES[self.kind]


_OUTCOMES: dict[UpstreamKind, str] = {
    "throttled": "throttled",
    "unavailable": "unavailable",
    "server": "server_error",
    "operator": "client_error",
    "input": "client_error",
}


class Upstream:
    """One SDK client per product, built once per worker process; a semaphore bounds calls in flight. The calls go
    on connections kept for the next (workers/transport.py): `close` them when done."""

    def __init__(self, settings: UpstreamSettings, metrics: WorkerMetrics | None = None) -> None:
        self.metrics = metrics
        self.settings = settings
        self.access_key_id = str(settings.access_key_id)
        self._facebody = FacebodyClient(self._config(settings.facebody_endpoint))
        self._cloudauth = CloudauthClient(self._config(settings.cloudauth_endpoint))
        self._slots = asyncio.Semaphore(settings.concurrency)
        self.pool = transport.Pool(limit=settings.concurrency)  # the kept connections (workers/transport.py)
        transport.install()

    async def close(self) -> None:
        await self.pool.close()

    def _config(self, endpoint: str) -> openapi_models.Config:
        return openapi_models.Config(
            access_key_id=str(self.settings.access_key_id),
            access_key_secret=str(self.settings.access_key_secret),
            endpoint=endpoint,
            protocol=self.settings.protocol,
            region_id=self.settings.region_id,
            connect_timeout=int(self.settings.connect_timeout_s * 1000),
            read_timeout=int(self.settings.read_timeout_s * 1000),
        )

    async def call(self, spec: ToolSpec, params: dict[str, Any], *, timeout_s: float) -> UpstreamResult:
        timeout_ms = max(1, int(min(timeout_s, self.settings.read_timeout_s) * 1000))
        connect_ms = min(timeout_ms, int(self.settings.connect_timeout_s * 1000))
        async with self._slots:
            started = time.perf_counter()
            outcome = "ok"
            try:
                with self.pool.using():
                    if spec.product == "cloudauth-intl":
                        return await self._call_cloudauth(spec, params, connect_ms, timeout_ms)
                    return await self._call_facebody(spec, params, connect_ms, timeout_ms)
            except TeaException as exc:
                error = classify(exc)
                outcome = error.outcome
                raise error from None
            except UpstreamError as exc:
                outcome = exc.outcome
                raise
            finally:
                if self.metrics is not None:
                    elapsed = time.perf_counter() - started
                    self.metrics.observe(UPSTREAM_CALL, (spec.action, outcome), elapsed)

    async def _call_facebody(
        self, spec: ToolSpec, params: dict[str, Any], connect_ms: int, timeout_ms: int
    ) -> UpstreamResult:
        request = getattr(facebody_models, spec.request_class)().from_map(params)
        runtime = tea_util_models.RuntimeOptions(autoretry=False, connect_timeout=connect_ms, read_timeout=timeout_ms)
        response = await getattr(self._facebody, spec.sdk_method)(request, runtime)
        body = response.body.to_map()
        return UpstreamResult(request_id=str(body.get("RequestId", "")), result=body.get("Data") or {})

    async def _call_cloudauth(
        self, spec: ToolSpec, params: dict[str, Any], connect_ms: int, timeout_ms: int
    ) -> UpstreamResult:
        request = getattr(cloudauth_models, spec.request_class)().from_map(params)
        runtime = DaraRuntimeOptions(autoretry=False, connect_timeout=connect_ms, read_timeout=timeout_ms)
        response = await getattr(self._cloudauth, spec.sdk_method)(request, runtime)
        body = response.body.to_map()
        request_id = str(body.get("RequestId", ""))
        code = str(body.get("Code", "Success"))
        if code != "Success":  # Cloudauth answers business failures inside an HTTP 200
            message = str(body.get("Message", code))
            raise UpstreamError(code, message, status=200, kind=kind_of(code, 200), request_id=request_id)
        return UpstreamResult(request_id=request_id, result=body.get("Result") or {})


def classify(exc: TeaException) -> UpstreamError:
    """Turn an SDK exception into a clean, classified error."""
    data = exc.data if isinstance(getattr(exc, "data", None), dict) else {}
    status = _status(exc)
    request_id = getattr(exc, "request_id", None) or data.get("RequestId")
    if isinstance(exc, UnretryableException) or exc.code is None:
        # Timeouts, refused connections and non-JSON answers: the upstream did not give a verdict.
        return UpstreamError(
            "UpstreamUnavailable",
            "the upstream service did not answer in time or answered garbage",
            status=status,
            kind="unavailable",
            request_id=request_id,
        )
    code = str(exc.code)
    message = str(data.get("Message") or exc.message or code)
    return UpstreamError(code, message, status=status, kind=kind_of(code, status), request_id=request_id)


def kind_of(code: str, status: int | None) -> UpstreamKind:
    """The kind of an upstream's refusal, from its code and HTTP status (None: the SDK refused before sending).

    a verdict inside an HTTP 200 (Cloudauth's business failures)   operator or input: never retried
    Throttling*                                                    throttled
    5xx, ServiceUnavailable*, InternalError*, Timeout*             server
    our credentials or subscription (OPERATOR_CODES)               operator
    refused before sending (no HTTP status): our configuration     operator
    anything else: the caller's input                              input
    """
    if status == 200:
        return "operator" if code.startswith(OPERATOR_CODES) else "input"
    if code.startswith(THROTTLING):
        return "throttled"
    if code.startswith(SERVER_CODE_PREFIXES) or (status is not None and status >= 500):
        return "server"
    if code.startswith(OPERATOR_CODES) or status is None:
        return "operator"
    return "input"


def _status(exc: TeaException) -> int | None:
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    if status is None and isinstance(getattr(exc, "data", None), dict):
        status = exc.data.get("statusCode")
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None
