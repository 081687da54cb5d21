"""Alibaba Cloud request signatures: ACS3-HMAC-SHA256 (the SDK default) and the old v2 RPC HMAC-SHA1 style.

ACS3: canonical request = METHOD \\n path \\n canonical query \\n canonical headers \\n signed header list \\n
hex sha256(body); string to sign = "ACS3-HMAC-SHA256\\n" + hex sha256(canonical request); signature = hex
HMAC-SHA256(secret, string to sign). The query is decoded and re-encoded (keys and values percent-encoded with
only `~` safe, pairs sorted), never compared raw; only the headers named in SignedHeaders count, so unsigned
headers added by the client library (Accept-Encoding, Content-Length) are ignored.

v2 (`Config(signature_algorithm="v2")`): every query and form parameter but Signature, sorted and encoded the
same way, string to sign = METHOD & %2F & encode(canonical query), signature = base64 HMAC-SHA1(secret + "&").

`signed_headers()` is the signing side, for tests and benchmarks that talk to the sandbox without the SDK.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from multidict import CIMultiDict, CIMultiDictProxy

from sandbox.errors import AuthError

ALGORITHM = "ACS3-HMAC-SHA256"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
REQUIRED_SIGNED_HEADERS = (
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)
Headers = CIMultiDictProxy[str] | CIMultiDict[str]


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    query: Sequence[tuple[str, str]]
    headers: Headers
    body: bytes
    form: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Caller:
    access_key_id: str
    action: str
    version: str
    scheme: str  # "acs3" or "v2"


def percent_encode(value: str) -> str:
    return quote(value, safe="~", encoding="utf-8")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((percent_encode(key), percent_encode(value)) for key, value in pairs)
    return "&".join(f"{key}={value}" for key, value in encoded)


def canonical_headers(headers: Headers, signed: Sequence[str]) -> str:
    lines = []
    for name in signed:
        values = sorted(value.strip() for value in headers.getall(name, []))
        lines.append(f"{name}:{','.join(values)}\n")
    return "".join(lines)


def acs3_string_to_sign(
    method: str, path: str, query: Iterable[tuple[str, str]], *, headers: Headers, signed: Sequence[str], body_hash: str
) -> str:
    canonical_request = "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(query),
            canonical_headers(headers, signed),
            ";".join(signed),
            body_hash,
        ]
    )
    return f"{ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def acs3_signature(secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def v2_signature(secret: str, method: str, params: Iterable[tuple[str, str]]) -> str:
    string_to_sign = f"{method.upper()}&%2F&{percent_encode(canonical_query(params))}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_headers(
    *,
    method: str,
    host: str,
    action: str,
    version: str,
    key_id: str,
    secret: str,
    query: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    date: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers (Authorization included) for one ACS3-signed request, as the SDK would send them."""
    headers = CIMultiDict[str](
        {
            "host": host,
            "x-acs-action": action,
            "x-acs-version": version,
            "x-acs-date": date or time.strftime(TIMESTAMP_FORMAT, time.gmtime()),
            "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
            "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
            "accept": "application/json",
        }
    )
    if content_type:
        headers["content-type"] = content_type
    signed = sorted(headers.keys())
    string_to_sign = acs3_string_to_sign(
        method, "/", query, headers=headers, signed=signed, body_hash=headers["x-acs-content-sha256"]
    )
    signature = acs3_signature(secret, string_to_sign)
    result = dict(headers)
    result["Authorization"] = f"{ALGORITHM} Credential={key_id},SignedHeaders={';'.join(signed)},Signature={signature}"
    return result


class NonceStore:
    """Signature nonces seen per access key, remembered for `ttl_s` seconds (Alibaba: 15 minutes); at most
    `max_entries` (the oldest are forgotten first), so long benchmarks cannot grow it without bound."""

    def __init__(self, ttl_s: float, max_entries: int = 1_000_000) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._seen: set[tuple[str, str]] = set()
        self._order: deque[tuple[float, tuple[str, str]]] = deque()

    def use(self, key_id: str, nonce: str, now: float) -> bool:
        while self._order and (self._order[0][0] <= now - self._ttl_s or len(self._order) >= self._max_entries):
            self._seen.discard(self._order.popleft()[1])
        entry = (key_id, nonce)
        if entry in self._seen:
            return False
        self._seen.add(entry)
        self._order.append((now, entry))
        return True

    def clear(self) -> None:
        self._seen.clear()
        self._order.clear()


class SignatureVerifier:
    def __init__(self, secrets: Mapping[str, str], nonces: NonceStore, max_skew_s: float) -> None:
        self._secrets = dict(secrets)
        self._nonces = nonces
        self._max_skew_s = max_skew_s

    def verify(self, request: SignedRequest, now: float | None = None) -> Caller:
        now = time.time() if now is None else now
        if "Authorization" in request.headers:
            return self._verify_acs3(request, now)
        if any(key == "Signature" for key, _ in request.query):
            return self._verify_v2(request, now)
        raise AuthError(
            "IncompleteSignature",
            "The request is not signed: send an ACS3-HMAC-SHA256 Authorization header or a v2 Signature parameter.",
        )

    def _verify_acs3(self, request: SignedRequest, now: float) -> Caller:
        credential, signed, signature = _parse_authorization(request.headers["Authorization"])
        secret = self._secret(credential)
        missing = [name for name in REQUIRED_SIGNED_HEADERS if name not in signed]
        if missing:
            raise AuthError("IncompleteSignature", f"SignedHeaders must include {', '.join(missing)}.")
        self._check_time(request.headers.get("x-acs-date", ""), now)
        body_hash = hashlib.sha256(request.body).hexdigest()
        if request.headers.get("x-acs-content-sha256", "").lower() != body_hash:
            raise AuthError("SignatureDoesNotMatch", "The x-acs-content-sha256 header does not match the body.")
        string_to_sign = acs3_string_to_sign(
            request.method, request.path, request.query, headers=request.headers, signed=signed, body_hash=body_hash
        )
        if not hmac.compare_digest(acs3_signature(secret, string_to_sign), signature.lower()):
            raise _mismatch(string_to_sign)
        self._use_nonce(credential, request.headers.get("x-acs-signature-nonce", ""), now)
        headers = request.headers
        return Caller(credential, headers.get("x-acs-action", ""), headers.get("x-acs-version", ""), "acs3")

    def _verify_v2(self, request: SignedRequest, now: float) -> Caller:
        params = [*request.query, *request.form]
        values = dict(params)
        secret = self._secret(values.get("AccessKeyId", ""))
        if values.get("SignatureMethod") != "HMAC-SHA1" or values.get("SignatureVersion") != "1.0":
            raise AuthError("IncompleteSignature", "v2 needs SignatureMethod=HMAC-SHA1 and SignatureVersion=1.0.")
        self._check_time(values.get("Timestamp", ""), now)
        expected = v2_signature(secret, request.method, [(k, v) for k, v in params if k != "Signature"])
        if not hmac.compare_digest(expected, values["Signature"]):
            raise _mismatch(f"{request.method.upper()}&%2F&...")
        self._use_nonce(values["AccessKeyId"], values.get("SignatureNonce", ""), now)
        return Caller(values["AccessKeyId"], values.get("Action", ""), values.get("Version", ""), "v2")

    def _secret(self, key_id: str) -> str:
        secret = self._secrets.get(key_id)
        if secret is None:
            raise AuthError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        return secret

    def _check_time(self, raw: str, now: float) -> None:
        try:
            stamp = datetime.strptime(raw, TIMESTAMP_FORMAT).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise AuthError(
                "InvalidTimeStamp.Format",
                f"Specified time stamp or date value is not well formatted (expected {TIMESTAMP_FORMAT}).",
            ) from None
        if abs(now - stamp) > self._max_skew_s:
            raise AuthError("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")

    def _use_nonce(self, key_id: str, nonce: str, now: float) -> None:
        if not nonce:
            raise AuthError("MissingSignatureNonce", "SignatureNonce is mandatory for this action.")
        if not self._nonces.use(key_id, nonce, now):
            raise AuthError("SignatureNonceUsed", "Specified signature nonce was used already.")


def _parse_authorization(header: str) -> tuple[str, list[str], str]:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthError(
            "IncompleteSignature",
            f"Signature algorithm {algorithm!r} is not supported here; use {ALGORITHM} or v2 (HMAC-SHA1).",
        )
    parts = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    credential, signed, signature = parts.get("Credential"), parts.get("SignedHeaders"), parts.get("Signature")
    if not credential or not signed or not signature:
        raise AuthError(
            "IncompleteSignature", "The Authorization header needs Credential, SignedHeaders and Signature."
        )
    return credential, [name.strip().lower() for name in signed.split(";")], signature


def _mismatch(string_to_sign: str) -> AuthError:
    return AuthError(
        "SignatureDoesNotMatch",
        f"Specified signature does not match our calculation. The server string to sign is: {string_to_sign}",
    )
