"""`python -m scripts.pay_demo [tool]`: pay for one tool call with the sandbox's demo wallet and print the result.

It is what an x402 buyer does: the official x402 httpx client calls the tool, gets 402 with the x402 terms in
`PAYMENT-REQUIRED`, signs an EIP-3009 USDC authorization with the wallet's key, and sends the call again with
`PAYMENT-SIGNATURE`. The sandbox facilitator settles it on its test ledger (no blockchain, no real money).
The demo wallet is Hardhat's public test account #0: never use its key anywhere else.
"""

from __future__ import annotations

import asyncio
import json
import sys

from eth_account import Account
from x402 import x402Client
from x402.http.clients.httpx import x402HttpxClient
from x402.http.utils import decode_payment_response_header
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.mechanisms.evm.signers import EthAccountSigner

from sandbox.facilitator.config import DEMO_WALLET_ADDRESS, DEMO_WALLET_KEY
from shared.config import Settings

DEFAULT_TOOL = "face-attribute-recognition"


async def pay_and_call(settings: Settings, tool: str) -> int:
    buyer = x402Client().register("eip155:*", ExactEvmClientScheme(EthAccountSigner(Account.from_key(DEMO_WALLET_KEY))))
    image = f"{settings.local.sandbox_url}/_sandbox/images/face.jpg"
    async with x402HttpxClient(buyer, base_url=settings.server.public_url, timeout=60, trust_env=False) as client:
        response = await client.post(f"/api/tools/{tool}", json={"ImageURL": image})
    print(f"POST /api/tools/{tool} -> {response.status_code}, paid by {DEMO_WALLET_ADDRESS}")
    if "PAYMENT-RESPONSE" in response.headers:
        settled = decode_payment_response_header(response.headers["PAYMENT-RESPONSE"])
        print(f"settled: {settled.success}, transaction {settled.transaction} on {settled.network}")
    print(json.dumps(response.json(), ensure_ascii=False, indent=2)[:2000])
    return 0 if response.status_code == 200 else 1


def main() -> int:
    tool = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_TOOL
    return asyncio.run(pay_and_call(Settings.from_env(), tool))


if __name__ == "__main__":
    raise SystemExit(main())
