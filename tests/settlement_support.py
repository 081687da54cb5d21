"""What the payment and settlement tests check a payment by: the ledger, the books against the facilitator's
transfers, and a job or payment reaching a status (polled: it is another task's, the reconciler's, to move it)."""

from __future__ import annotations

import asyncio
from typing import Any

from support import Pipeline

from sandbox.facilitator.config import DEMO_PAY_TO
from sandbox.facilitator.testing import RunningFacilitator
from shared import keys

PRICE_ATOMIC = 200_000  # 20 cents in USDC's 6 decimals


def face(pipeline: Pipeline) -> dict[str, str]:
    return {"ImageURL": pipeline.sandbox.image("face.jpg")}


def base_url(pipeline: Pipeline) -> str:
    return str(pipeline.api.make_url("")).rstrip("/")


async def ledger(pipeline: Pipeline) -> list[dict[str, str]]:
    entries = await pipeline.redis.xrange(keys.LEDGER)
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


async def books_balance(pipeline: Pipeline, facilitator: RunningFacilitator, *, paid: int) -> None:
    """What the ledger says was settled is exactly what the facilitator moved to us, and that is `paid` calls."""
    settled = sum(int(e["amountAtomic"]) for e in await ledger(pipeline) if e["event"] == "settled")
    received = sum(int(t["value"]) for t in await facilitator.transfers() if t["to"].lower() == DEMO_PAY_TO.lower())
    assert settled == received == paid * PRICE_ATOMIC


async def until_status(pipeline: Pipeline, path: str, wanted: set[str], **headers: str) -> dict[str, Any]:
    for _ in range(600):
        body: dict[str, Any] = await (await pipeline.api.get(path, headers=headers)).json()
        if body.get("status") in wanted:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never reached {wanted}: {body}")
