"""FacilitatorConfig: every setting of the local x402 facilitator, read from the environment here and nowhere else.

| variable | default | meaning |
|---|---|---|
| SERVER402_FACILITATOR_PORT | 8404 | listen port on 127.0.0.1 (always loopback; 0: any free port, logged at start) |
| SERVER402_X402_NETWORK | eip155:8453 | the one CAIP-2 network served (Base; eip155:84532 is Base Sepolia) |
| SERVER402_X402_ASSET | 0x8335…2913 | the token contract the ledger plays (Base USDC) |
| SERVER402_X402_ASSET_NAME | USD Coin | its EIP-712 domain name (Base Sepolia USDC: "USDC") |
| SERVER402_X402_ASSET_VERSION | 2 | its EIP-712 domain version |
| SERVER402_SANDBOX_WALLETS | (none) | comma-separated 0x addresses funded with 100 USDC at start |
| SERVER402_FACILITATOR_LOG_LEVEL | info | structlog level (warning silences the per-request lines) |

The demo wallet (DEMO_WALLET_ADDRESS) is always funded with 100 USDC as well. Invalid values stop the process at
start with one message naming every bad variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from eth_utils.address import is_address, to_checksum_address

HOST = "127.0.0.1"
BASE_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
USDC_DECIMALS = 6
STARTING_BALANCE = 100 * 10**USDC_DECIMALS  # 100 USDC in atomic units
LOG_LEVELS = ("debug", "info", "warning", "error")

# Public test keys (Hardhat/Anvil accounts #0, #1, #2, printed by every local node): they hold value ONLY on this
# in-memory ledger. Never send anything to them on a real chain; anyone can spend from them.
DEMO_WALLET_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEMO_WALLET_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # Hardhat #0: the payer of `make run` demos
DEMO_PAY_TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # Hardhat #1: the gateway's payTo in sandbox mode
FACILITATOR_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
FACILITATOR_ADDRESS = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # Hardhat #2: listed as the signer in /supported

_NETWORK = re.compile(r"eip155:[1-9][0-9]{0,18}")


class FacilitatorConfigError(ValueError):
    """One or more settings are invalid; the message lists each of them."""


@dataclass(frozen=True, kw_only=True)
class FacilitatorConfig:
    port: int = 8404
    network: str = "eip155:8453"
    asset: str = BASE_USDC
    asset_name: str = "USD Coin"
    asset_version: str = "2"
    wallets: tuple[str, ...] = ()
    log_level: str = "info"
    # As Coinbase's CDP facilitator: /supported, /verify and /settle want a CDP JWT signed by this key (PEM public
    # key of an EC or Ed25519 key pair; its id is the JWT's kid). Empty: no authentication (x402.org's way).
    cdp_public_key_pem: str = ""
    cdp_key_id: str = ""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise FacilitatorConfigError("invalid facilitator settings:\n  " + "\n  ".join(problems))

    @property
    def host(self) -> str:
        return HOST

    @property
    def chain_id(self) -> int:
        return int(self.network.removeprefix("eip155:"))

    @property
    def funded_wallets(self) -> tuple[str, ...]:
        """The demo wallet, then SERVER402_SANDBOX_WALLETS: checksummed, each once, each given STARTING_BALANCE."""
        wallets = (DEMO_WALLET_ADDRESS, *(to_checksum_address(wallet) for wallet in self.wallets))
        return tuple(dict.fromkeys(wallets))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FacilitatorConfig:
        environ = os.environ if environ is None else environ
        problems: list[str] = []
        raw_port = _get(environ, "SERVER402_FACILITATOR_PORT", "8404")
        if not raw_port.isdigit():
            problems.append(f"SERVER402_FACILITATOR_PORT={raw_port!r}: must be an integer")
        wallets = tuple(
            part.strip() for part in environ.get("SERVER402_SANDBOX_WALLETS", "").split(",") if part.strip()
        )
        config = None
        try:
            config = cls(
                port=int(raw_port) if raw_port.isdigit() else 8404,
                network=_get(environ, "SERVER402_X402_NETWORK", "eip155:8453"),
                asset=_get(environ, "SERVER402_X402_ASSET", BASE_USDC),
                asset_name=_get(environ, "SERVER402_X402_ASSET_NAME", "USD Coin"),
                asset_version=_get(environ, "SERVER402_X402_ASSET_VERSION", "2"),
                wallets=wallets,
                log_level=_get(environ, "SERVER402_FACILITATOR_LOG_LEVEL", "info").lower(),
            )
        except FacilitatorConfigError as exc:
            problems.extend(line.strip() for line in str(exc).splitlines()[1:])
        if problems or config is None:
            raise FacilitatorConfigError("invalid facilitator settings:\n  " + "\n  ".join(problems))
        return config


def _problems(config: FacilitatorConfig) -> list[str]:
    problems = []
    if not 0 <= config.port <= 65535:
        problems.append(f"SERVER402_FACILITATOR_PORT={config.port}: must be between 0 and 65535")
    if not _NETWORK.fullmatch(config.network):
        problems.append(f"SERVER402_X402_NETWORK={config.network!r}: must be an EVM network like eip155:8453")
    if not is_address(config.asset):
        problems.append(f"SERVER402_X402_ASSET={config.asset!r}: must be a 0x token contract address")
    if not config.asset_name or not config.asset_version:
        problems.append("SERVER402_X402_ASSET_NAME and SERVER402_X402_ASSET_VERSION: must not be empty")
    bad = [wallet for wallet in config.wallets if not is_address(wallet)]
    if bad:
        problems.append(
            f"SERVER402_SANDBOX_WALLETS: not 0x addresses (40 hex digits, valid checksum): {', '.join(bad)}"
        )
    if config.log_level not in LOG_LEVELS:
        problems.append(f"SERVER402_FACILITATOR_LOG_LEVEL={config.log_level!r}: must be one of {', '.join(LOG_LEVELS)}")
    return problems


def _get(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip()
    return value or default
