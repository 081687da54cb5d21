"""SettlementCache: a /settle of a payment already settled answers its original result, so a lost answer can be asked
for again (the gateway's reconciler does).

The key is the digest of the payment: sha256 of the canonical JSON (the SDK models dumped camelCase without nulls,
keys sorted, no spaces) of {"paymentPayload", "paymentRequirements"}. Only successes are kept, for the life of the
process: a failed settle is judged afresh next time (a payer funded since may now pass). Another payload with an
already used nonce has another digest, so the SDK judges it, and refuses it (nonce already used).

One settle per digest runs at a time: a request for a digest being settled waits for it, then finds its success in
the cache (or, after a failure, is judged itself). The settle runs in a worker thread that no cancelled request stops;
its success is kept when it ends, so a client that hung up mid-settle still finds it on asking again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Literal

import msgspec
from x402 import PaymentPayload, PaymentRequirements, SettleResponse

Source = Literal["settled", "failed", "replayed"]
_canonical = msgspec.json.Encoder(order="sorted")


def payment_digest(payload: PaymentPayload, requirements: PaymentRequirements) -> str:
    document = {
        "paymentPayload": payload.model_dump(mode="json", by_alias=True, exclude_none=True),
        "paymentRequirements": requirements.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    return hashlib.sha256(_canonical.encode(document)).hexdigest()


class SettlementCache:
    def __init__(self) -> None:
        self._settled: dict[str, SettleResponse] = {}
        self._running: dict[str, asyncio.Future[SettleResponse]] = {}

    def __len__(self) -> int:
        return len(self._settled)

    async def settle(self, digest: str, run: Callable[[], SettleResponse]) -> tuple[SettleResponse, Source]:
        """The cached success of this digest ("replayed"), or run() in a thread: ("settled" | "failed")."""
        while (running := self._running.get(digest)) is not None:
            await asyncio.wait([running])  # never raises, and a cancelled waiter leaves the settle running
        cached = self._settled.get(digest)
        if cached is not None:
            return cached, "replayed"
        future = asyncio.get_running_loop().run_in_executor(None, run)
        self._running[digest] = future
        future.add_done_callback(lambda done: self._finished(digest, done))
        result = await asyncio.shield(future)
        return result, "settled" if result.success else "failed"

    def _finished(self, digest: str, future: asyncio.Future[SettleResponse]) -> None:
        self._running.pop(digest, None)
        if future.cancelled() or future.exception() is not None:
            return  # the request awaiting it answers 500 (and logs it); nothing is kept
        if future.result().success:
            self._settled[digest] = future.result()
