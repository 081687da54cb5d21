"""Signatures are verified as Alibaba does: ACS3-HMAC-SHA256 (and v2 HMAC-SHA1), keys, nonces, clock skew."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest
from alibabacloud_facebody20191230 import models as fb
from alibabacloud_tea_openapi.exceptions import ClientException
from multidict import CIMultiDict

from sandbox.signature import NonceStore, SignatureVerifier, SignedRequest, signed_headers, v2_signature
from sandbox.testing import RunningSandbox

IMAGE = {"ImageURL": "https://example.com/a.jpg"}


async def raw_call(
    sandbox: RunningSandbox,
    keys: Any,
    *,
    params: dict[str, str] | None = None,
    action: str = "DetectFace",
    version: str = "2019-12-30",
    secret: str | None = None,
    nonce: str | None = None,
    date: str | None = None,
    send_body: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    """One ACS3-signed POST without the SDK, signed by sandbox.signature.signed_headers."""
    body = urlencode(params if params is not None else IMAGE).encode()
    headers = signed_headers(
        method="POST",
        host=sandbox.endpoint,
        action=action,
        version=version,
        key_id=keys.key_id,
        secret=secret or keys.secret,
        body=body,
        content_type="application/x-www-form-urlencoded",
        nonce=nonce,
        date=date,
    )
    async with sandbox.http.post(
        f"{sandbox.url}/", data=send_body if send_body is not None else body, headers=headers
    ) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


@pytest.mark.asyncio
async def test_wrong_secret_is_signature_does_not_match(facebody: Any, runtime: Any, keys: Any) -> None:
    client = facebody(secret="not-the-secret")
    with pytest.raises(ClientException) as caught:
        await client.detect_face_with_options_async(fb.DetectFaceRequest(image_url=IMAGE["ImageURL"]), runtime())
    assert caught.value.code == "SignatureDoesNotMatch"
    assert caught.value.status_code == 400
    assert set(caught.value.data) >= {"RequestId", "Code", "Message", "HostId", "Recommend"}


@pytest.mark.asyncio
async def test_unknown_access_key_is_not_found(facebody: Any, runtime: Any) -> None:
    with pytest.raises(ClientException) as caught:
        await facebody(key_id="nobody").detect_face_with_options_async(
            fb.DetectFaceRequest(image_url=IMAGE["ImageURL"]), runtime()
        )
    assert (caught.value.code, caught.value.status_code) == ("InvalidAccessKeyId.NotFound", 404)


@pytest.mark.asyncio
async def test_replayed_nonce_is_refused(sandbox: RunningSandbox, keys: Any) -> None:
    assert (await raw_call(sandbox, keys, nonce="nonce-1"))[0] == 200
    status, body = await raw_call(sandbox, keys, nonce="nonce-1")
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")
    assert (await raw_call(sandbox, keys, nonce="nonce-2"))[0] == 200


@pytest.mark.asyncio
async def test_stale_timestamp_is_expired(sandbox: RunningSandbox, keys: Any) -> None:
    stale = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 16 * 60))
    status, body = await raw_call(sandbox, keys, date=stale)
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 14 * 60))
    assert (await raw_call(sandbox, keys, date=recent))[0] == 200


@pytest.mark.asyncio
async def test_body_changed_after_signing_does_not_match(sandbox: RunningSandbox, keys: Any) -> None:
    status, body = await raw_call(sandbox, keys, send_body=b"ImageURL=https%3A%2F%2Fexample.com%2Fb.jpg")
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")


@pytest.mark.asyncio
async def test_query_is_decoded_and_reencoded(facebody: Any, runtime: Any) -> None:
    """aiohttp sends `a b+c/é~` as `a+b%2Bc/%C3%A9~`; the signature must still match."""
    with pytest.raises(ClientException) as caught:
        await facebody().query_face_image_template_with_options_async(
            fb.QueryFaceImageTemplateRequest(template_id="a b+c/é~&=%", page_no=1), runtime()
        )
    assert caught.value.code == "InvalidTemplate.NotFound"


@pytest.mark.asyncio
async def test_v2_hmac_sha1_signatures_are_accepted(facebody: Any, runtime: Any) -> None:
    client = facebody(signature_algorithm="v2")
    response = await client.detect_face_with_options_async(
        fb.DetectFaceRequest(image_url="https://example.com/a b.jpg", landmark=True), runtime()
    )
    assert response.body.data.face_count >= 1
    with pytest.raises(ClientException) as caught:
        await facebody(secret="wrong", signature_algorithm="v2").detect_face_with_options_async(
            fb.DetectFaceRequest(image_url="https://example.com/a.jpg"), runtime()
        )
    assert caught.value.code == "SignatureDoesNotMatch"


@pytest.mark.asyncio
async def test_unsigned_request_is_refused_as_json(sandbox: RunningSandbox) -> None:
    async with sandbox.http.post(f"{sandbox.url}/", data=b"ImageURL=x", headers={"x-acs-action": "DetectFace"}) as r:
        assert r.status == 400
        assert (await r.json())["Code"] == "IncompleteSignature"


@pytest.mark.asyncio
async def test_unknown_action_and_wrong_version(sandbox: RunningSandbox, keys: Any) -> None:
    status, body = await raw_call(sandbox, keys, action="DetectAliens")
    assert (status, body["Code"]) == (404, "InvalidAction.NotFound")
    status, body = await raw_call(sandbox, keys, version="2022-08-09")
    assert (status, body["Code"]) == (400, "InvalidVersion")


@pytest.mark.asyncio
async def test_unknown_path_answers_json(sandbox: RunningSandbox) -> None:
    async with sandbox.http.get(f"{sandbox.url}/nothing/here") as response:
        assert response.status == 404
        assert (await response.json())["Code"] == "NotFound"


def test_verifier_checks_signed_headers_only_and_nonce_expiry() -> None:
    nonces = NonceStore(ttl_s=900)
    verifier = SignatureVerifier({"ak": "sk"}, nonces, max_skew_s=900)
    body = b"ImageURL=https%3A%2F%2Fexample.com%2Fa.jpg"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    headers = CIMultiDict(
        signed_headers(
            method="POST",
            host="127.0.0.1:1",
            action="DetectFace",
            version="2019-12-30",
            key_id="ak",
            secret="sk",
            body=body,
            date=stamp,
            nonce="n1",
        )
    )
    headers["Accept-Encoding"] = "gzip"  # unsigned: ignored
    request = SignedRequest(method="POST", path="/", query=[], headers=headers, body=body, form=[])
    now = time.time()
    assert verifier.verify(request, now).action == "DetectFace"
    assert not nonces.use("ak", "n1", now + 899)
    assert nonces.use("ak", "n1", now + 901)


def test_v2_signature_matches_the_sdk_algorithm() -> None:
    from alibabacloud_tea_openapi.utils import Utils

    params = {"Action": "DetectFace", "ImageURL": "https://example.com/a b.jpg?x=1&y=é", "Landmark": "True"}
    assert v2_signature("sk", "POST", params.items()) == Utils.get_rpcsignature(params, "POST", "sk")
