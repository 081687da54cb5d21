"""An in-memory USDC ledger, and LedgerSigner: x402's FacilitatorEvmSigner protocol answered by it. No blockchain.

The ledger plays the one token contract of the configured network the way FiatTokenV2 (USDC) behaves: balances in
atomic units (6 decimals), EIP-3009 `transferWithAuthorization` with real EIP-712 signature recovery, one set of
used authorization nonces per authorizer, and the list of settled transfers, each with a fake but unique 0x tx hash.
One lock guards it all: the SDK's facilitator is synchronous and the app runs it in worker threads.

What the SDK's exact EVM facilitator (x402/mechanisms/evm/exact/facilitator.py) asks of a chain, and the answers:

    get_code(payer) / get_code(asset)     b"" for every wallet (EOAs); bytecode for the token and Multicall3
    read_contract(token, transferWithAuthorization, ...)   verify's simulation: every check, nothing changes
    read_contract(Multicall3, tryAggregate, ...)   verify's diagnosis: balanceOf, name, version,
                                          authorizationState (decimals, symbol too) decoded from calldata
    write_contract(token, transferWithAuthorization, ...)  settle: the checks, then nonce used and value moved
    wait_for_transaction_receipt(hash)    at once: status 1 and the ERC-20 Transfer log the SDK checks

A failed check raises ContractRevert("execution reverted: <FiatTokenV2 reason>"), the shape web3 gives a revert, so
the SDK maps it to its own reason codes (e.g. "authorization is used or canceled" -> nonce already used).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from eth_abi.abi import decode, encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError
from x402.mechanisms.evm.constants import MULTICALL3_ADDRESS, TX_STATUS_SUCCESS
from x402.mechanisms.evm.types import TransactionReceipt, TypedDataDomain, TypedDataField

USDC_DECIMALS = 6
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
ERROR_SELECTOR = keccak(text="Error(string)")[:4]
CONTRACT_CODE = bytes.fromhex("6080604052")  # any non-empty code: "a contract lives here"

AUTHORIZATION_TYPES = {
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ]
}
_DOMAIN_FIELDS = {"name": "string", "version": "string", "chainId": "uint256", "verifyingContract": "address"}


class ContractRevert(Exception):
    """A call the token contract refuses; str() reads like web3's ContractLogicError."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"execution reverted: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Token:
    """The token contract the ledger plays, and its EIP-712 domain."""

    address: str
    name: str
    version: str
    chain_id: int

    @property
    def domain(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "chainId": self.chain_id, "verifyingContract": self.address}


@dataclass(frozen=True)
class Authorization:
    """The arguments of transferWithAuthorization, whichever overload (v, r, s or bytes signature) carried them."""

    sender: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes
    signature: bytes

    def message(self) -> dict[str, Any]:
        return {
            "from": self.sender,
            "to": self.to,
            "value": self.value,
            "validAfter": self.valid_after,
            "validBefore": self.valid_before,
            "nonce": "0x" + self.nonce.hex(),
        }


@dataclass(frozen=True)
class Transfer:
    """One settled transferWithAuthorization; `at` is its unix time."""

    sender: str
    to: str
    value: int
    nonce: str
    transaction: str
    block: int
    at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.sender,
            "to": self.to,
            "value": self.value,
            "nonce": self.nonce,
            "transaction": self.transaction,
            "at": self.at,
        }


class Ledger:
    """Balances, used authorization nonces and settled transfers of one token, behind one lock."""

    def __init__(self, token: Token) -> None:
        self.token = replace(token, address=to_checksum_address(token.address))
        self._lock = threading.Lock()
        self._balances: dict[str, int] = {}
        self._used: dict[str, set[bytes]] = {}
        self._transfers: list[Transfer] = []
        self._by_hash: dict[str, Transfer] = {}

    def balance_of(self, address: str) -> int:
        with self._lock:
            return self._balances.get(to_checksum_address(address), 0)

    def fund(self, address: str, amount: int) -> int:
        """Mint `amount` atomic units to `address`; returns the new balance."""
        if amount <= 0:
            raise ValueError("amount must be a positive number of atomic units")
        owner = to_checksum_address(address)
        with self._lock:
            self._balances[owner] = self._balances.get(owner, 0) + amount
            return self._balances[owner]

    def authorization_state(self, authorizer: str, nonce: bytes) -> bool:
        with self._lock:
            return nonce in self._used.get(to_checksum_address(authorizer), set())

    def transfers(self) -> list[Transfer]:
        with self._lock:
            return list(self._transfers)

    def transaction(self, tx_hash: str) -> Transfer | None:
        with self._lock:
            return self._by_hash.get(tx_hash.lower())

    def simulate(self, auth: Authorization) -> None:
        """What an eth_call of transferWithAuthorization does: every check (ContractRevert), no change."""
        signer = self._signer_of(auth)
        with self._lock:
            self._check(auth, signer)

    def transfer_with_authorization(self, auth: Authorization) -> Transfer:
        """FiatTokenV2's checks in its order, then the nonce is used and the value moves, atomically."""
        signer = self._signer_of(auth)
        with self._lock:
            self._check(auth, signer)
            self._used.setdefault(auth.sender, set()).add(auth.nonce)
            self._balances[auth.sender] = self._balances.get(auth.sender, 0) - auth.value
            self._balances[auth.to] = self._balances.get(auth.to, 0) + auth.value
            block = len(self._transfers) + 1
            seed = encode(
                ["uint256", "uint256", "address", "bytes32"], [self.token.chain_id, block, auth.sender, auth.nonce]
            )
            transfer = Transfer(
                sender=auth.sender,
                to=auth.to,
                value=auth.value,
                nonce="0x" + auth.nonce.hex(),
                transaction="0x" + keccak(b"server402 sandbox ledger" + seed).hex(),
                block=block,
                at=int(time.time()),
            )
            self._transfers.append(transfer)
            self._by_hash[transfer.transaction] = transfer
            return transfer

    def _signer_of(self, auth: Authorization) -> str | None:
        """ecrecover over the token's own EIP-712 domain: outside the lock, it is the slow part."""
        message = auth.message()
        return recover_typed_data(
            self.token.domain, AUTHORIZATION_TYPES, "TransferWithAuthorization", message, auth.signature
        )

    def _check(self, auth: Authorization, signer: str | None) -> None:
        now = int(time.time())
        if now <= auth.valid_after:
            raise ContractRevert("FiatTokenV2: authorization is not yet valid")
        if now >= auth.valid_before:
            raise ContractRevert("FiatTokenV2: authorization is expired")
        if auth.nonce in self._used.get(auth.sender, set()):
            raise ContractRevert("FiatTokenV2: authorization is used or canceled")
        if signer != auth.sender:
            raise ContractRevert("FiatTokenV2: invalid signature")
        if auth.to == ZERO_ADDRESS:
            raise ContractRevert("ERC20: transfer to the zero address")
        if auth.value > self._balances.get(auth.sender, 0):
            raise ContractRevert("ERC20: transfer amount exceeds balance")


def recover_typed_data(
    domain: dict[str, Any],
    types: dict[str, list[dict[str, str]]],
    primary_type: str,
    message: dict[str, Any],
    signature: bytes,
) -> str | None:
    """The checksummed address that signed this EIP-712 data (eth_account), or None for an unusable signature."""
    domain_type = [{"name": name, "type": kind} for name, kind in _DOMAIN_FIELDS.items() if name in domain]
    typed_data = {
        "types": {"EIP712Domain": domain_type, **types},
        "primaryType": primary_type,
        "domain": domain,
        "message": {key: "0x" + value.hex() if isinstance(value, bytes) else value for key, value in message.items()},
    }
    try:
        return str(Account.recover_message(encode_typed_data(full_message=typed_data), signature=signature))
    except (ValueError, TypeError, BadSignature, ValidationError):
        return None


@dataclass(frozen=True)
class _Function:
    name: str
    inputs: list[str]
    outputs: list[str]


def _functions(*specs: tuple[str, list[str]]) -> dict[bytes, _Function]:
    table = {}
    for signature, outputs in specs:
        name, _, arguments = signature.partition("(")
        inputs = [kind for kind in arguments.rstrip(")").split(",") if kind]
        table[keccak(text=signature)[:4]] = _Function(name, inputs, outputs)
    return table


# The token functions reachable through Multicall3 calldata, by selector.
TOKEN_FUNCTIONS = _functions(
    ("balanceOf(address)", ["uint256"]),
    ("authorizationState(address,bytes32)", ["bool"]),
    ("name()", ["string"]),
    ("version()", ["string"]),
    ("symbol()", ["string"]),
    ("decimals()", ["uint8"]),
    ("transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)", []),
    ("transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)", []),
)


class LedgerSigner:
    """x402's FacilitatorEvmSigner (x402/mechanisms/evm/signer.py) over a Ledger: a chain with one token on it."""

    def __init__(self, ledger: Ledger, facilitator_address: str) -> None:
        self.ledger = ledger
        self._address = to_checksum_address(facilitator_address)
        self._contracts = {to_checksum_address(ledger.token.address), MULTICALL3_ADDRESS}

    def get_addresses(self) -> list[str]:
        return [self._address]

    def get_chain_id(self) -> int:
        return self.ledger.token.chain_id

    def get_code(self, address: str) -> bytes:
        return CONTRACT_CODE if to_checksum_address(address) in self._contracts else b""

    def get_balance(self, address: str, token_address: str) -> int:
        if to_checksum_address(token_address) != self.ledger.token.address:
            return 0
        return self.ledger.balance_of(address)

    def verify_typed_data(  # noqa: PLR0917 (the protocol's signature)
        self,
        address: str,
        domain: TypedDataDomain | Mapping[str, Any],
        types: Mapping[str, Sequence[TypedDataField | Mapping[str, str]]],
        primary_type: str,
        message: dict[str, Any],
        signature: bytes,
    ) -> bool:
        """EOA signatures only (ecrecover via eth_account): no smart wallets (EIP-1271) live on this ledger."""
        if self.get_code(address):
            return False
        domain_data = _domain_dict(domain) if isinstance(domain, TypedDataDomain) else dict(domain)
        type_data = {
            name: [{"name": f.name, "type": f.type} if isinstance(f, TypedDataField) else dict(f) for f in fields]
            for name, fields in types.items()
        }
        signer = recover_typed_data(domain_data, type_data, primary_type, message, signature)
        return signer is not None and signer.lower() == address.lower()

    def read_contract(self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any) -> Any:
        target = to_checksum_address(address)
        if target == MULTICALL3_ADDRESS and function_name == "tryAggregate":
            return [self._raw_call(to_checksum_address(call[0]), bytes(call[1])) for call in args[1]]
        return self._call(target, function_name, args)

    def write_contract(
        self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any, data_suffix: str | None = None
    ) -> str:
        """Only the token's transferWithAuthorization can be sent; a revert raises (as web3's gas estimate does)."""
        if to_checksum_address(address) != self.ledger.token.address or function_name != "transferWithAuthorization":
            raise ContractRevert(
                f"the sandbox ledger sends transferWithAuthorization to its token only, not {function_name}"
            )
        return self.ledger.transfer_with_authorization(_authorization(args)).transaction

    def send_transaction(self, to: str, data: bytes) -> str:
        raise ContractRevert("the sandbox ledger deploys no contracts (no ERC-6492 smart wallets)")

    def wait_for_transaction_receipt(self, tx_hash: str) -> TransactionReceipt:
        transfer = self.ledger.transaction(tx_hash)
        if transfer is None:
            raise TimeoutError(f"transaction {tx_hash} is not on the sandbox ledger")
        log = {
            "address": self.ledger.token.address,
            "topics": [TRANSFER_TOPIC, _address_topic(transfer.sender), _address_topic(transfer.to)],
            "data": "0x" + transfer.value.to_bytes(32, "big").hex(),
        }
        return TransactionReceipt(
            status=TX_STATUS_SUCCESS, block_number=transfer.block, tx_hash=transfer.transaction, logs=[log]
        )

    def _call(self, target: str, function_name: str, args: tuple[Any, ...]) -> Any:
        """An eth_call of the token: reads, or the transferWithAuthorization simulation (None when it would pass)."""
        if target != self.ledger.token.address:
            raise ContractRevert(f"no contract at {target} on the sandbox ledger")
        token = self.ledger.token
        constants = {"name": token.name, "version": token.version, "symbol": "USDC", "decimals": USDC_DECIMALS}
        if function_name in constants:
            return constants[function_name]
        match function_name:
            case "balanceOf":
                return self.ledger.balance_of(args[0])
            case "authorizationState":
                return self.ledger.authorization_state(args[0], bytes(args[1]))
            case "transferWithAuthorization":
                return self.ledger.simulate(_authorization(args))
        raise ContractRevert(f"the sandbox token has no function {function_name}")

    def _raw_call(self, target: str, calldata: bytes) -> tuple[bool, bytes]:
        """One Multicall3 sub-call: (success, ABI-encoded return data or Error(string) revert data)."""
        function = TOKEN_FUNCTIONS.get(calldata[:4])
        if function is None:
            return False, b""
        try:
            result = self._call(target, function.name, decode(function.inputs, calldata[4:]))
        except ContractRevert as exc:
            return False, ERROR_SELECTOR + encode(["string"], [exc.reason])
        return True, encode(function.outputs, [result]) if function.outputs else b""


def _authorization(args: tuple[Any, ...]) -> Authorization:
    sender, to, value, valid_after, valid_before, nonce, *signature = args
    if len(signature) == 3:  # the (v, r, s) overload
        v, r, s = signature
        packed = bytes(r) + bytes(s) + bytes([int(v)])
    elif len(signature) == 1:  # the (bytes signature) overload
        packed = bytes(signature[0])
    else:
        raise ContractRevert("transferWithAuthorization: wrong number of arguments")
    return Authorization(
        to_checksum_address(sender),
        to_checksum_address(to),
        int(value),
        int(valid_after),
        int(valid_before),
        bytes(nonce),
        packed,
    )


def _domain_dict(domain: TypedDataDomain) -> dict[str, Any]:
    values = {
        "name": domain.name,
        "version": domain.version,
        "chainId": domain.chain_id,
        "verifyingContract": domain.verifying_contract,
    }
    return {key: value for key, value in values.items() if value}


def _address_topic(address: str) -> str:
    return "0x" + "00" * 12 + address.lower().removeprefix("0x")
