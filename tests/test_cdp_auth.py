"""Coinbase CDP's facilitator authentication: with a CDP API key set, every facilitator request carries a fresh
JWT signed by it, as CDP's own scheme has it. The sandbox facilitator, configured with the key's public half,
refuses requests without one (401), as CDP does; the official x402 client pays through it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from settlement_support import base_url, books_balance, face
from support import Pipeline
from x402_support import httpx_buyer

from api.callcore.cdp_auth import CdpAuth, cdp_jwt, private_key
from sandbox.facilitator.config import FacilitatorConfig
from sandbox.facilitator.testing import RunningFacilitator, run_facilitator

KEY_ID = "organizations/0000/apiKeys/1111"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_PEM = EC_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
EC_PUBLIC_PEM = (
    EC_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


@pytest.fixture
async def facilitator() -> AsyncIterator[RunningFacilitator]:
    async with run_facilitator(FacilitatorConfig(cdp_public_key_pem=EC_PUBLIC_PEM, cdp_key_id=KEY_ID)) as running:
        yield running


@pytest.fixture
def pipeline_env(facilitator: RunningFacilitator) -> dict[str, str]:
    return {
        "SERVER402_X402_FACILITATOR_URL": facilitator.url,
        "SERVER402_X402_CDP_API_KEY_ID": KEY_ID,
        "SERVER402_X402_CDP_API_KEY_SECRET": EC_PEM.replace("\n", "\\n"),  # as one env line holds it
    }


@pytest.fixture
def operator_terms() -> dict[str, object]:
    return {"defaults": {"amountCents": 20, "qps": 1000}}


async def test_the_official_client_pays_through_a_facilitator_that_wants_cdp_jwts(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    async with httpx_buyer(base_url(pipeline)) as client:
        response = await client.post("/api/tools/face-detection", json=face(pipeline))
    assert response.status_code == 200, response.text
    assert (await facilitator.outcomes())["settle"] == {"settled": 1}
    await books_balance(pipeline, facilitator, paid=1)


async def test_the_facilitator_refuses_requests_without_a_cdp_jwt(facilitator: RunningFacilitator) -> None:
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer " + cdp_jwt("another", private_key(EC_PEM), "POST", "x")}):
            async with http.post(f"{facilitator.url}/settle", json={}, headers=headers) as answer:
                assert answer.status == 401


@pytest.mark.parametrize("kind", ["ec", "ed25519"])
def test_a_cdp_jwt_has_cdps_claims_for_each_endpoint(kind: str) -> None:
    if kind == "ec":
        secret, public = EC_PEM, EC_KEY.public_key()
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public_raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        secret, public = base64.b64encode(raw + public_raw).decode(), key.public_key()
    headers = CdpAuth(KEY_ID, secret, "https://api.cdp.coinbase.com/platform/v2/x402").get_auth_headers()
    token = headers.settle["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, public, algorithms=["ES256", "EdDSA"])
    assert claims["sub"] == KEY_ID and claims["iss"] == "cdp" and claims["exp"] - claims["nbf"] == 120
    assert claims["uris"] == ["POST api.cdp.coinbase.com/platform/v2/x402/settle"]
    header = jwt.get_unverified_header(token)
    assert header["kid"] == KEY_ID and header["typ"] == "JWT" and len(header["nonce"]) == 16
    supported = jwt.decode(headers.supported["Authorization"][7:], public, algorithms=["ES256", "EdDSA"])
    assert supported["uris"] == ["GET api.cdp.coinbase.com/platform/v2/x402/supported"]
    with pytest.raises(ValueError, match="CDP API key secret"):
        private_key("not a key")
