"""Paying a 402 with an EVM wallet key, through the x402 SDK's synchronous client.

The server's 402 carries the x402 terms in `PAYMENT-REQUIRED`; `Wallet.pay` signs an EIP-3009 authorization for
them (`x402HTTPClientSync.handle_402_response`) and returns the `PAYMENT-SIGNATURE` header to send the request
again with. Signing happens here, offline; the server settles through its facilitator.

The SDK (and eth-account) load only when a wallet is made: commands that do not pay start faster.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from client.errors import ApiError

_HEX_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")


class Wallet:
    """An x402 buyer. `spend_limit=False` lifts the SDK's default cap per payment (USD 1), for purchases of many
    calls whose price the caller chose by asking for them."""

    def __init__(self, private_key: str, *, spend_limit: bool = True) -> None:
        if not _HEX_KEY.fullmatch(private_key.strip()):
            raise ValueError("a wallet key is 64 hexadecimal digits (an EVM private key), with or without 0x")
        from eth_account import Account
        from x402 import PaymentError, x402ClientSync
        from x402.http import x402HTTPClientSync
        from x402.mechanisms.evm.exact import ExactEvmClientScheme
        from x402.mechanisms.evm.signers import EthAccountSigner

        account = Account.from_key(private_key.strip())
        self.address: str = account.address
        client = x402ClientSync().register("eip155:*", ExactEvmClientScheme(EthAccountSigner(account)))
        if not spend_limit:
            client.set_spend_controls(False)
        self._http = x402HTTPClientSync(client)
        self._refusals: tuple[type[Exception], ...] = (PaymentError, ValueError)  # ValueError: malformed terms

    def pay(self, response: httpx.Response) -> dict[str, str]:
        """The headers that pay for the request `response` (a 402) answered."""
        try:
            headers, _ = self._http.handle_402_response(
                dict(response.headers.items()), response.content, str(response.request.url)
            )
        except self._refusals as exc:
            raise _not_paid(response, exc) from None
        return dict(headers)


def _not_paid(response: httpx.Response, exc: Exception) -> ApiError:
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return ApiError(402, "payment_not_signed", f"could not pay the server's 402 with this wallet: {reason}", body)
