"""Coinbase CDP's facilitator authentication: a short-lived JWT per request, signed with the operator's CDP API key.

The scheme is CDP's own (cdp-sdk `cdp/auth/utils/jwt.py`, which the x402 SDK does not include): header
`{alg, kid: key id, typ: "JWT", nonce: 16 digits}`, claims `{sub: key id, iss: "cdp", nbf, exp: nbf + 120,
uris: ["<METHOD> <host><path>"]}`, signed ES256 with an EC key (PEM) or EdDSA with an Ed25519 key (base64 of
its 64 bytes), and sent as `Authorization: Bearer <jwt>`. Each facilitator request gets a fresh one: the x402
client asks `get_auth_headers()` before every call. Written with PyJWT and cryptography (already installed)
rather than cdp-sdk, which would bring a Solana stack into the server for these twenty lines.
"""

from __future__ import annotations

import base64
import secrets
import time
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from x402.http.facilitator_client_base import AuthHeaders

LIFETIME_S = 120
ENDPOINTS = {"verify": ("POST", "/verify"), "settle": ("POST", "/settle"), "supported": ("GET", "/supported")}

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def private_key(secret: str) -> PrivateKey:
    """A CDP API key secret: an EC key in PEM, or an Ed25519 key as base64 of seed and public key (raises
    ValueError for anything else)."""
    text = secret.replace("\\n", "\n")  # keys pasted into one env line
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except ValueError:
        key = None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) == 64:
        return ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
    raise ValueError("a CDP API key secret is an EC private key (PEM) or an Ed25519 key (base64 of 64 bytes)")


def cdp_jwt(key_id: str, key: PrivateKey, method: str, url: str, *, now: int | None = None) -> str:
    """The bearer token for one request to `url` with `method`."""
    issued = int(time.time()) if now is None else now
    parts = urlsplit(url)
    algorithm = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "EdDSA"
    header = {
        "alg": algorithm,
        "kid": key_id,
        "typ": "JWT",
        "nonce": "".join(secrets.choice("0123456789") for _ in range(16)),
    }
    claims = {
        "sub": key_id,
        "iss": "cdp",
        "nbf": issued,
        "exp": issued + LIFETIME_S,
        "uris": [f"{method} {parts.netloc}{parts.path}"],
    }
    return jwt.encode(claims, key, algorithm=algorithm, headers=header)


class CdpAuth:
    """x402's AuthProvider for a CDP facilitator at `facilitator_url`."""

    def __init__(self, key_id: str, secret: str, facilitator_url: str) -> None:
        self._key_id = key_id
        self._key = private_key(secret)
        self._url = facilitator_url.rstrip("/")

    def get_auth_headers(self) -> AuthHeaders:
        headers = {
            name: {"Authorization": f"Bearer {cdp_jwt(self._key_id, self._key, method, self._url + path)}"}
            for name, (method, path) in ENDPOINTS.items()
        }
        return AuthHeaders(verify=headers["verify"], settle=headers["settle"], supported=headers["supported"])
