"""Paying for benchmark calls the way a buyer does: the official x402 client buys bundle tokens
(`POST /api/payments`) from the demo wallet, which the sandbox facilitator funds with test USDC first."""

from __future__ import annotations

import aiohttp
from eth_account import Account
from x402 import x402Client
from x402.http.clients.httpx import x402HttpxClient
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.mechanisms.evm.signers import EthAccountSigner

from sandbox.facilitator.config import DEMO_WALLET_ADDRESS, DEMO_WALLET_KEY

MAX_CALLS_PER_TOKEN = 10_000  # shared.payments.MAX_CALLS_PER_PAYMENT
PRICED_TERMS = "[defaults]\namountCents = 1\nqps = 10000\n"  # every tool costs USD 0.01 a call


async def buy_tokens(api: str, facilitator: str, service: str, calls: int) -> list[str]:
    """Tokens for at least `calls` calls of `service` (one per 10,000 calls)."""
    async with aiohttp.ClientSession() as http:
        fund = {"address": DEMO_WALLET_ADDRESS, "amount": 10**15}  # far more test USDC than any run spends
        async with http.post(f"{facilitator}/_facilitator/fund", json=fund) as funded:
            funded.raise_for_status()
    wallet = x402Client().register(
        "eip155:*", ExactEvmClientScheme(EthAccountSigner(Account.from_key(DEMO_WALLET_KEY)))
    )
    wallet.set_spend_controls(False)  # the client's default cap refuses bundles over a few dollars
    tokens = []
    async with x402HttpxClient(wallet, base_url=api, timeout=60, trust_env=False) as client:
        for _ in range(-(-calls // MAX_CALLS_PER_TOKEN)):
            response = await client.post("/api/payments", json={"serviceId": service, "calls": MAX_CALLS_PER_TOKEN})
            if response.status_code != 201:
                raise RuntimeError(f"buying a token: {response.status_code} {response.text[:300]}")
            tokens.append(str(response.json()["token"]))
    return tokens
