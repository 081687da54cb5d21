"""Every typed application and request key of the sandbox, nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from sandbox.catalog import ActionCatalog
from sandbox.config import SandboxConfig
from sandbox.faults import FaultTable, Hangs
from sandbox.images import ImageLoader
from sandbox.limits import RateLimiter
from sandbox.samples import Sample
from sandbox.signature import NonceStore, SignatureVerifier
from sandbox.state import StateStore
from sandbox.stats import Stats


@dataclass
class CallInfo:
    """What the middleware needs to know about one request after the handler ran."""

    request_id: str
    arrived: float = 0.0  # time.monotonic() as the middleware got the request: the QPS window's time (sandbox/rpc.py)
    action: str | None = None  # set for Alibaba calls: the stats bucket
    access_key_id: str = ""
    host_id: str = "facebody.cn-shanghai.aliyuncs.com"
    fault: bool = False


CONFIG = web.AppKey("config", SandboxConfig)
CATALOG = web.AppKey("catalog", ActionCatalog)
NONCES = web.AppKey("nonces", NonceStore)
VERIFIER = web.AppKey("verifier", SignatureVerifier)
LIMITER = web.AppKey("limiter", RateLimiter)
STATS = web.AppKey("stats", Stats)
FAULTS = web.AppKey("faults", FaultTable)
STATE = web.AppKey("state", StateStore)
LOADER = web.AppKey("loader", ImageLoader)
SAMPLES = web.AppKey("samples", dict[str, Sample])
HANGS = web.AppKey("hangs", Hangs)
CALL = web.RequestKey("call", CallInfo)
