"""Who is calling and whose things are: the one place that says it.

Identities are canonical: an API key is `key:<keyId>`, a wallet its EIP-55 checksum address, a payment token
`pay:<paymentId>` (an HMAC-checked token names its payment; tokens are never stored).

    caller                 owns its jobs/batches as   acts on the face databases of (tenant)
    API key                key:<id>                   key:<id>
    payment token only     pay:<paymentId>            the payment's buyer (its key or wallet)
    x402 payment only      anonymous (the job id)     the payer's wallet
    nobody (free call)     anonymous                  anonymous

A payment bought with `bindClient` pays only for its buyer (shared/payments.py `boundTo`): a key-bought one only
with that key, a wallet-bought one only without any API key. Jobs of nobody in particular are read with their id
(128 random bits) as the capability.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.address import is_hex_address, to_checksum_address

from api.apikeys import ApiKey
from shared.jobs import ANONYMOUS

TOKEN_OWNER_PREFIX = "pay:"


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request (the adapter checked the key and its rate once)."""

    api_key: ApiKey | None = None

    @property
    def key_client_id(self) -> str:
        return self.api_key.client_id if self.api_key else ""


ANONYMOUS_CALLER = Caller()


def token_owner(payment_id: str) -> str:
    return TOKEN_OWNER_PREFIX + payment_id


def wallet(address: str) -> str:
    """A wallet's canonical identity: its EIP-55 checksum address (raises ValueError for a non-address)."""
    if not is_hex_address(address):
        raise ValueError("not an EVM address")
    return str(to_checksum_address(address))


def buyer_of(caller: Caller, payer: str) -> str:
    """Who a payment made by `payer` (EIP-55) in this request belongs to: the presenting key, else the wallet."""
    return caller.key_client_id or payer


def tenant_of(caller: Caller, buyer: str | None, fallback: str) -> str:
    """Whose face databases a call acts on: the presenting key's; else the buyer of the payment that pays it (a
    key or a wallet); else `fallback`."""
    return caller.key_client_id or buyer or fallback


def batch_owner(caller: Caller, paying: list[str]) -> str:
    """Whose a batch is: the presenting key's; else the first paying token's payment (every token of a batch must
    pay for an item); else nobody in particular."""
    return caller.key_client_id or (token_owner(paying[0]) if paying else ANONYMOUS)


def readers(caller: Caller, token_payments: list[str]) -> frozenset[str]:
    """Every owner this caller may read things of: its key, the payments of the tokens it presents, anonymous."""
    owners = {ANONYMOUS, *(token_owner(payment_id) for payment_id in token_payments)}
    if caller.api_key is not None:
        owners.add(caller.key_client_id)
    return frozenset(owners)


def owns_payment(caller: Caller, token_payment: str | None, client_id: str, payment_id: str) -> bool:
    """Whether the caller may see a payment's private fields (payer, transaction, key, token): it presents the
    key that bought it, or the payment's own token."""
    by_key = caller.api_key is not None and client_id == caller.key_client_id
    return by_key or token_payment == payment_id
