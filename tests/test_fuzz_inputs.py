"""Whatever bytes a caller sends, in headers, bodies, path segments or the query, no endpoint answers 5xx and nothing
is logged at error level: bad input is always the caller's 4xx.

One property per endpoint family: tool calls (a priced tool, free ones, unknown ones), payments (buy and read),
batches (JSON and JSON lines; read), jobs (read and cancel), catalog search, the webhook secret, `/mcp` and
`/openapi.json`. The strategies send arbitrary bytes, JSON of odd shapes, invalid UTF-8 inside otherwise valid
JSON strings, valid requests with one field changed, and non-ASCII text (Arabic-Indic and full-width digits,
invisible and right-to-left characters) in header values and in look-alikes of our ids and tokens. Header values
are bytes: a text's UTF-8, the same with bytes that are not UTF-8 inserted, or arbitrary bytes (any but CR and LF).
Each request is written to the test server's socket as those very bytes (`Fuzzer.exchange`): aiohttp's client
encodes header text as UTF-8, so through it a latin-1 "byte string" arrives double-encoded and bytes that are not
UTF-8 cannot be sent at all. The stand-ins KEY, JOB and BATCH become a genuine API key, job id and batch id of the
test's pipeline, so valid credentials and ids (and slight changes of them) get past the first checks. The cases of
the security report are `@example`s, run every time.

Async and Hypothesis: pytest-asyncio runs an `async def` test decorated with `@given` itself (its
AsyncHypothesisTest item): Hypothesis calls the test once per example and pytest-asyncio runs each example's
coroutine to completion on the test's own event loop, the loop the fixtures were built on, so the API server, the
worker and the sandbox serve the example while it awaits. The fixtures are built once per test and shared by its
examples (hence the suppressed `function_scoped_fixture` health check): an example only has to be answered well,
not to find an empty store. A failing example is shrunk as usual. Runs are reproducible: `derandomize=True` and no
example database.

An answer is wrong when its status is 5xx, when `/mcp` answers JSON-RPC's internal error (-32603, which the
handshake era sends with 200), or when an error-level line is logged: by structlog (`capture_logs`), or by a
standard-library logger (`caplog`, after the filter production applies: aiohttp's parser refusals are warnings).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
import traceback
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import structlog
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from support import FREE_AND_FAST, Pipeline

from api import appkeys
from api.apikeys import ApiKeyStore
from shared.logging import quiet_malformed_requests
from shared.payments import offer_id

PRICED = "face-detection"
IMAGE = "https://example.com/a.jpg"
VALID_INPUT: dict[str, dict[str, Any]] = {
    PRICED: {"ImageURL": IMAGE},
    "face-comparison": {"ImageURLA": IMAGE, "ImageURLB": IMAGE},
    "face-liveness-detection": {"Tasks": [{"ImageURL": IMAGE}]},
    "face-database-list": {},
}
TOOLS = sorted(VALID_INPUT)
TOOL_FIELDS = ("ImageURL", "ImageURLA", "ImageURLB", "ImageDataA", "Tasks", "MaxFaceNumber", "Landmark", "Limit")
SECRET = "fuzz-token-secret-0123456789-abcdefghijkl"
KEY, JOB, BATCH = "<api-key>", "<job-id>", "<batch-id>"
ERROR_LEVELS = ("error", "critical", "exception")

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {**FREE_AND_FAST, "services": {PRICED: {"amountCents": 20}}}


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    # Short waits, so that a fuzzed call that happens to be valid runs without holding the run up. Loopback images
    # refused (the sandbox would fetch them); the test client trusted as a proxy, so X-Forwarded-For is read; the
    # token secret known, so the strategies can make genuine offer ids to change.
    return {
        "SERVER402_WAIT_DEFAULT_S": "0.5",
        "SERVER402_WAIT_MAX_S": "0.5",
        "SERVER402_IMAGE_ALLOWED_NETWORKS": "10.0.0.0/8",
        "SERVER402_TRUSTED_PROXIES": "127.0.0.0/8",
        "SERVER402_TOKEN_SECRET": SECRET,
    }


# ---------------------------------------------------------------- text and JSON

ODD_CHARS = (
    "٠١٢٣٤٥٦٧٨٩۰۳۹१३０１２３９"  # Arabic-Indic, extended Arabic-Indic, Devanagari and full-width digits
    "ａＺ．。\u00a0\u200b\u200d\u202e\ufeff\u2028é漢🙂İı"  # full-width letters and stops, invisible, RTL override
)
odd_text = st.text(st.sampled_from("abcxyz0189._-=:/%,;\"' " + ODD_CHARS) | st.characters(codec="utf-8"), max_size=24)
odd_digits = st.text(st.sampled_from("0123456789" + ODD_CHARS[:20]), min_size=1, max_size=12)
bad_utf8 = st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3(", b"\x80", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28", b"\xc0\xaf"])
MARK = "\ue000mark\ue000"  # where a JSON text holds bytes that are not UTF-8 (see `dumped`)
URLS = [IMAGE, "http://10.1.2.3/a.jpg", "http://127.0.0.1/a.jpg", "http://١٢٧.٠.٠.١/a", "http://１２７。０。０。１/",
        "http://bücher.example/ü", "http://[::1]/", "http://0x7f.1/", "http://example.com:٨٠/",
        "https://xn--/"]  # fmt: skip
urls = st.sampled_from(URLS) | st.builds(
    "{}://{}{}/{}".format, st.sampled_from(["http", "https", "ftp"]), odd_text, st.just("") | odd_digits, odd_text
)


def dumped(value: Any, ascii_only: bool, bad: bytes) -> bytes:
    """`value` as JSON (NaN and Infinity as Python writes them), each MARK replaced by bytes that are not UTF-8."""
    mark = json.dumps(MARK, ensure_ascii=ascii_only)[1:-1].encode()
    return json.dumps(value, ensure_ascii=ascii_only).encode().replace(mark, bad)


def json_values(fields: tuple[str, ...] = ()) -> st.SearchStrategy[Any]:
    names = [*TOOLS, "face_detection", "no-such-tool", "2.0", "job.completed", MARK]
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), odd_text, urls, st.sampled_from(names))
    keys_ = st.sampled_from(fields) | odd_text if fields else odd_text
    return st.recursive(
        leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys_, inner, max_size=5), max_leaves=12
    )


def objects(*fields: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(fields) | odd_text, json_values(fields), max_size=5)


def documents(*shapes: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """A body: arbitrary bytes, or JSON of one of `shapes` (with bytes that are not UTF-8 where it holds MARK)."""
    return st.one_of(st.binary(max_size=120), *(st.builds(dumped, shape, st.booleans(), bad_utf8) for shape in shapes))


# ---------------------------------------------------------------- ids, tokens and headers


def mutated(text: str, at: int, char: str) -> str:
    at %= len(text)
    return text[:at] + char + text[at + 1 :]


def around(stand_in: str) -> st.SearchStrategy[str]:
    """A genuine value (its stand-in), alone or with odd text before or after it."""
    return st.builds("{}{}{}".format, st.just("") | odd_text, st.just(stand_in), st.just("") | odd_text)


genuine_offer = st.builds(
    offer_id, st.just(SECRET), st.sampled_from(TOOLS), st.integers(1, 10_000), st.sampled_from([1, 4_102_444_800])
)
payment_ids = st.one_of(
    st.builds("pay_o.{}.{}.{}.{}".format, st.sampled_from(TOOLS) | odd_text, odd_digits, odd_digits, odd_text),
    genuine_offer,
    st.builds(mutated, genuine_offer, st.integers(0, 99), st.sampled_from(ODD_CHARS)),
    st.builds("pay_{}".format, odd_text),
    odd_text,
)
tokens = st.builds("s402pt_{}.{}".format, payment_ids, odd_text) | st.builds("s402pt_{}".format, odd_text)
base32ish = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz234567" + ODD_CHARS), min_size=36, max_size=36)
job_ids = st.one_of(st.builds("job_{}".format, base32ish), st.just(JOB), around(JOB), odd_text)
batch_ids = st.one_of(st.builds("bat_{}".format, base32ish), st.just(BATCH), around(BATCH), odd_text)
header_texts = st.one_of(
    odd_text,
    tokens,
    st.lists(tokens, max_size=3).map(",".join),
    st.sampled_from([KEY, f"Bearer {KEY}", f"bearer   {KEY} ", f"{KEY}x", f"Bearer {KEY}٣", f"Basic {KEY}"]),
    st.sampled_from(["1.2.3.4", "10.0.0.1, 1.2.3.4", "[::1]:80", "fe80::1%eth0", "١.٢.٣.٤", "1.2.3.4:٨٠"]),
    documents(json_values(("x402Version", "payload", "accepted"))).map(lambda raw: base64.b64encode(raw).decode()),
)


def header_bytes(text: str) -> bytes:
    """`text` as a header value: its UTF-8 bytes, without control characters but tab."""
    return "".join(ch for ch in text if ch == "\t" or not (ch < " " or ch == "\x7f")).encode()


def with_bytes(text: str, at: int, raw: bytes) -> bytes:
    """`text` as a header value with `raw` (not UTF-8) inserted in its bytes."""
    encoded = header_bytes(text)
    at %= len(encoded) + 1
    return encoded[:at] + raw + encoded[at:]


header_values = st.one_of(
    header_texts.map(header_bytes),
    st.builds(with_bytes, header_texts, st.integers(0, 99), bad_utf8),
    st.builds(with_bytes, tokens, st.integers(11, 40), bad_utf8),  # after s402pt_pay_: where a token's HMAC is read
    st.binary(max_size=40).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"")),  # other controls too
)
HEADERS = ("X-Payment-Token", "PAYMENT-SIGNATURE", "X-PAYMENT", "Idempotency-Key", "Authorization", "X-API-Key",
           "Prefer", "X-Forwarded-For", "X-Request-ID", "Accept")  # fmt: skip
common_headers = st.builds(
    lambda auth, fuzzed: {**auth, **fuzzed},
    st.sampled_from([{}, {"X-API-Key": KEY.encode()}, {"Authorization": f"Bearer {KEY}".encode()}]),
    st.dictionaries(st.sampled_from(HEADERS), header_values, max_size=4),
)
CONTENT_TYPES = [b"application/json", b"application/json; charset=latin-1", b"text/plain", b"application/problem+json"]
content_types = st.one_of(st.just(b"application/json"), st.none(), st.sampled_from(CONTENT_TYPES), header_values)


# ---------------------------------------------------------------- valid requests with one change


def changed(document: Any, path: tuple[str, ...], value: Any) -> Any:
    """`document` with the value at `path` replaced (objects on the way made as needed)."""
    if not path:
        return value
    copy = dict(document) if isinstance(document, dict) else {}
    copy[path[0]] = changed(copy.get(path[0]), path[1:], value)
    return copy


def changes(*paths: tuple[str, ...]) -> st.SearchStrategy[tuple[tuple[str, ...], Any] | None]:
    """No change, or one of `paths` (or a key of odd text) set to an odd value."""
    path = st.sampled_from(paths) | odd_text.map(lambda key: (key,))
    return st.none() | st.tuples(path, st.one_of(json_values(TOOL_FIELDS), odd_digits, st.just(MARK), tokens))


def apply(document: Any, change: tuple[tuple[str, ...], Any] | None) -> Any:
    return document if change is None else changed(document, *change)


def item(tool: str, change: Any = None) -> dict[str, Any]:
    return apply({"customId": "a", "serviceId": tool, "input": VALID_INPUT[tool]}, change)


tool_segments = st.sampled_from([*TOOLS, "no-such-tool", "face_detection"]) | odd_text
tool_calls = st.one_of(
    st.tuples(tool_segments, documents(objects(*TOOL_FIELDS), json_values(TOOL_FIELDS))),
    st.tuples(st.sampled_from(TOOLS), changes(*((field,) for field in TOOL_FIELDS)), st.booleans(), bad_utf8).map(
        lambda drawn: (drawn[0], dumped(apply(VALID_INPUT[drawn[0]], drawn[1]), drawn[2], drawn[3]))
    ),
)
purchases = st.builds(apply, st.just({"serviceId": PRICED}), changes(("serviceId",), ("providerId",), ("calls",)))
x402_changes = changes(("x402Version",), ("accepted", "amount"), ("accepted", "extra", "calls"),
                       ("accepted", "network"), ("payload", "authorization", "value"),
                       ("payload", "authorization", "validBefore"), ("payload", "authorization", "nonce"),
                       ("payload", "signature"))  # fmt: skip
signatures = st.none() | st.tuples(st.integers(1, 3), x402_changes, st.binary(min_size=65, max_size=65))
items = st.builds(item, st.sampled_from(TOOLS), changes(("customId",), ("serviceId",), ("input",), ("input", "Tasks")))
batches = st.builds(
    apply, st.lists(items, max_size=3).map(lambda listed: {"items": listed}), changes(("webhook",), ("webhookEvents",))
)


# ---------------------------------------------------------------- asking


@dataclass
class Fuzzer:
    """Sends requests to one pipeline and checks each answer; `genuine` replaces the stand-ins KEY, JOB, BATCH."""

    pipeline: Pipeline
    caplog: pytest.LogCaptureFixture
    genuine: dict[str, str]

    def real(self, value: Any) -> Any:
        """`value` (text or bytes) with the stand-ins replaced by the genuine values."""
        for stand_in, genuine in self.genuine.items():
            if isinstance(value, str):
                value = value.replace(stand_in, genuine)
            else:
                value = value.replace(stand_in.encode(), genuine.encode())
        return value

    async def ask(
        self, method: str, target: str | bytes, *, body: bytes | None = None, headers: dict[str, bytes] | None = None,
        content_type: bytes | None = None,
    ) -> None:  # fmt: skip
        """One request; no 5xx, no JSON-RPC internal error and nothing logged at error level."""
        sent = {name: self.real(value) for name, value in (headers or {}).items()}
        if content_type is not None:
            sent["Content-Type"] = content_type
        self.caplog.clear()
        with capture_logs(processors=[structlog.processors.format_exc_info]) as logs:
            status, answer = await self.exchange(method, self.real(target), sent, body)
        problems = [f"status {status}" if status else "no answer"] if not 0 < status < 500 else []
        problems += ["a JSON-RPC internal error"] if b'"code":-32603' in answer else []
        problems += [f"logged {entry['event']!r} at {entry['log_level']}{innermost(entry.get('exception'))}"
                     for entry in logs if entry.get("log_level") in ERROR_LEVELS]  # fmt: skip
        problems += [f"{record.name} logged {record.getMessage()!r}{innermost(record.exc_info)}"
                     for record in self.caplog.records
                     if quiet_malformed_requests(record) and record.levelno >= logging.ERROR]  # fmt: skip
        assert not problems, (
            f"{method} {target!r} {sent} {body!r:.300}: {'; '.join(problems)}; answered {answer[:300]!r}"
        )

    async def exchange(
        self, method: str, target: str | bytes, headers: dict[str, bytes], body: bytes | None
    ) -> tuple[int, bytes]:
        """The request as these very bytes on the wire (aiohttp's client sends header text as UTF-8, never other
        bytes); the status (0: none) and the body of the answer."""
        target = target.encode() if isinstance(target, str) else target
        lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
        lines += [name.encode() + b": " + value for name, value in headers.items()]
        lines += [] if body is None else [b"Content-Length: %d" % len(body)]
        server = self.pipeline.api.server
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + (body or b""))
            raw = await asyncio.wait_for(reader.read(), timeout=20)
        finally:
            writer.close()
        head, _, answer = raw.partition(b"\r\n\r\n")
        if re.search(rb"(?im)^transfer-encoding: *chunked", head):
            answer = dechunked(answer)
        return (int(head.split(b" ", 2)[1]) if head else 0), answer

    def x402(self, calls: int, change: Any, signature: bytes) -> bytes:
        """A PAYMENT-SIGNATURE for what a 402 asks for `calls` calls of PRICED, with `change`, signed by no one."""
        service = self.pipeline.catalog.resolve(PRICED)
        assert service is not None
        accepted = (
            self.pipeline.api.app[appkeys.X402].requirements(service, calls).model_dump(mode="json", by_alias=True)
        )
        authorization = {"from": "0x" + "11" * 20, "to": accepted["payTo"], "value": accepted["amount"],
                         "validAfter": "0", "validBefore": str(int(time.time()) + 30),
                         "nonce": "0x" + "22" * 32}  # fmt: skip
        payload = {"x402Version": 2, "accepted": accepted,
                   "payload": {"authorization": authorization, "signature": "0x" + signature.hex()}}  # fmt: skip
        return base64.b64encode(dumped(apply(payload, change), True, b"\xff"))


def dechunked(data: bytes) -> bytes:
    body = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        body += data[:size]
        data = data[size + 2 :]
    return bytes(body)


def innermost(trace: Any) -> str:
    """` at file:line` of the innermost frame of a formatted traceback or of an exc_info triple, if any."""
    if isinstance(trace, tuple) and trace[2] is not None:
        frame = traceback.extract_tb(trace[2])[-1]
        return f" at {frame.filename}:{frame.lineno}"
    frames = re.findall(r'File "([^"]+)", line (\d+)', trace) if isinstance(trace, str) else []
    return f" at {frames[-1][0]}:{frames[-1][1]}" if frames else ""


@pytest.fixture
async def fuzzer(pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> Fuzzer:
    """The pipeline, with a genuine API key and a job and a batch of that key's."""
    _, key = await ApiKeyStore(pipeline.redis).create("fuzz", None, 10_000, 10_000)
    auth = {"X-API-Key": key}
    call = await pipeline.api.post(
        "/api/tools/face-comparison", json=VALID_INPUT["face-comparison"], headers={**auth, "Prefer": "respond-async"}
    )
    batch = await pipeline.api.post("/api/batches", json=[item("face-comparison")], headers=auth)
    assert (call.status, batch.status) == (202, 201), (await call.text(), await batch.text())
    genuine = {KEY: key, JOB: (await call.json())["jobId"], BATCH: (await batch.json())["batchId"]}
    return Fuzzer(pipeline, caplog, genuine)


def path_of(template: str, segment: str | bytes, query: dict[str, str | bytes | None] | None = None) -> str:
    """`template` with the segment percent-encoded in it (slashes too), and the query's values that are not None."""
    pairs = [f"{name}={quote(value)}" for name, value in (query or {}).items() if value is not None]
    return template.format(quote(segment, safe="")) + ("?" + "&".join(pairs) if pairs else "")


# ---------------------------------------------------------------- the properties


@FUZZ
@given(call=tool_calls, headers=common_headers, content_type=content_types, signed=signatures)
@example(call=(PRICED, b'{"ImageURL": "\xff\xfe"}'), headers={}, content_type=b"application/json", signed=None)
@example(call=("face-comparison", b'{"ImageURLA": "\xc3("}'), headers={}, content_type=None, signed=None)
@example(call=(PRICED, json.dumps(VALID_INPUT[PRICED]).encode()), content_type=None, signed=None,
         headers={"X-Payment-Token": "s402pt_pay_o.face-detection.٣.1.x.y".encode()})  # fmt: skip
@example(call=(PRICED, json.dumps(VALID_INPUT[PRICED]).encode()), content_type=None, signed=None,
         headers={"X-Payment-Token": "s402pt_pay_é.é".encode(), "PAYMENT-SIGNATURE": "٣".encode()})  # fmt: skip
@example(call=(PRICED, json.dumps(VALID_INPUT[PRICED]).encode()), content_type=None, signed=None,
         headers={"X-Payment-Token": with_bytes("s402pt_pay_.x", 11, b"\xff")})  # fmt: skip
async def test_tool_calls_answer_bad_input_with_4xx(
    fuzzer: Fuzzer, call: tuple[str, bytes], headers: dict[str, bytes], content_type: bytes | None, signed: Any
) -> None:
    tool, body = call
    if signed is not None:
        headers = {**headers, "PAYMENT-SIGNATURE": fuzzer.x402(*signed)}
    await fuzzer.ask("POST", path_of("/api/tools/{}", tool), body=body, headers=headers, content_type=content_type)


@FUZZ
@given(body=documents(purchases, purchases, objects("serviceId", "providerId", "calls")), headers=common_headers,
       content_type=content_types, signed=signatures)  # fmt: skip
@example(body=b'{"serviceId": "\xff\xfe"}', headers={}, content_type=b"application/json", signed=None)
@example(body=b'{"serviceId": "face-detection"}', headers={"X-PAYMENT": "٣".encode()}, content_type=None,
         signed=None)  # fmt: skip
async def test_buying_a_payment_answers_bad_input_with_4xx(
    fuzzer: Fuzzer, body: bytes, headers: dict[str, bytes], content_type: bytes | None, signed: Any
) -> None:
    if signed is not None:
        headers = {**headers, "PAYMENT-SIGNATURE": fuzzer.x402(*signed)}
    await fuzzer.ask("POST", "/api/payments", body=body, headers=headers, content_type=content_type)


@FUZZ
@given(payment_id=payment_ids | st.binary(max_size=24), headers=common_headers)
@example(payment_id="pay_o.face-detection.٣.1.xxx", headers={})
@example(payment_id=mutated(offer_id(SECRET, PRICED, 1, 4_102_444_800), 21, "٣"), headers={})
@example(payment_id="pay_o.face-detection.1.1.é", headers={"X-Payment-Token": "s402pt_pay_é.é".encode()})
@example(payment_id="pay_o.face-detection.1.1.x", headers={"X-Payment-Token": b"s402pt_pay_\xff.x"})
async def test_reading_a_payment_answers_bad_ids_with_4xx(
    fuzzer: Fuzzer, payment_id: str | bytes, headers: dict[str, bytes]
) -> None:
    await fuzzer.ask("GET", path_of("/api/payments/{}", payment_id), headers=headers)


@FUZZ
@given(body=documents(st.lists(items, min_size=1, max_size=3), batches, json_values(("items", "customId"))),
       headers=common_headers, content_type=content_types)  # fmt: skip
@example(body=b'[{"customId": "a", "serviceId": "face-detection", "input": {"ImageURL": "\xff"}}]', headers={},
         content_type=b"application/json")  # fmt: skip
@example(body=b'{"items": [{"customId": "\xed\xa0\x80"}]}', headers={}, content_type=None)
@example(body=json.dumps([item(PRICED)]).encode(), content_type=None,
         headers={"X-Payment-Token": "s402pt_pay_o.face-detection.٣.1.x.y, s402pt_é".encode()})  # fmt: skip
@example(body=json.dumps([item(PRICED)]).encode(), content_type=None, headers={"X-Payment-Token": b"s402pt_pay_\xff.x"})
async def test_json_batches_answer_bad_input_with_4xx(
    fuzzer: Fuzzer, body: bytes, headers: dict[str, bytes], content_type: bytes | None
) -> None:
    await fuzzer.ask("POST", "/api/batches", body=body, headers=headers, content_type=content_type)


@FUZZ
@given(lines=st.lists(documents(items, items), min_size=1, max_size=4), headers=common_headers,
       content_type=st.sampled_from([b"application/x-ndjson", b"application/jsonl", b"application/x-ndjson; x=\xff"]),
       )  # fmt: skip
@example(lines=[b'{"customId": "a", "serviceId": "face-detection", "input": {"ImageURL": "\xff\xfe"}}'], headers={},
         content_type=b"application/x-ndjson")  # fmt: skip
@example(lines=[b"\xff", b"\xc3("], headers={}, content_type=b"application/x-ndjson")
async def test_json_lines_batches_answer_bad_input_with_4xx(
    fuzzer: Fuzzer, lines: list[bytes], headers: dict[str, bytes], content_type: bytes
) -> None:
    await fuzzer.ask("POST", "/api/batches", body=b"\n".join(lines), headers=headers, content_type=content_type)


@FUZZ
@given(batch_id=batch_ids | st.binary(max_size=24), wait=st.none() | odd_digits, headers=common_headers)
@example(batch_id="bat_" + "٣" * 36, wait=None, headers={})
@example(batch_id=BATCH, wait="٠.١", headers={"X-API-Key": KEY.encode()})
@example(batch_id=BATCH, wait=None, headers={"X-Payment-Token": b"s402pt_pay_\xff.x"})
async def test_reading_a_batch_answers_bad_ids_with_4xx(
    fuzzer: Fuzzer, batch_id: str | bytes, wait: str | None, headers: dict[str, bytes]
) -> None:
    await fuzzer.ask("GET", path_of("/api/batches/{}", fuzzer.real(batch_id), {"wait": wait}), headers=headers)


@FUZZ
@given(
    method=st.sampled_from(["GET", "DELETE"]),
    job_id=job_ids | st.binary(max_size=24),
    wait=st.none() | odd_digits,
    headers=common_headers,
)
@example(method="GET", job_id="job_" + "٣" * 36, wait="٣", headers={})
@example(
    method="DELETE", job_id=JOB, wait=None, headers={"X-Payment-Token": "s402pt_é".encode(), "X-API-Key": KEY.encode()}
)
@example(method="GET", job_id=JOB, wait=None, headers={"X-Payment-Token": b"s402pt_pay_\xff.x"})
async def test_reading_and_canceling_a_job_answer_bad_ids_with_4xx(
    fuzzer: Fuzzer, method: str, job_id: str | bytes, wait: str | None, headers: dict[str, bytes]
) -> None:
    await fuzzer.ask(method, path_of("/api/jobs/{}", fuzzer.real(job_id), {"wait": wait}), headers=headers)


@FUZZ
@given(q=odd_text | st.binary(max_size=30), limit=st.none() | odd_digits, category=st.none() | odd_text,
       headers=common_headers)  # fmt: skip
@example(q="٣", limit="٣", category=None, headers={})
@example(q=b"\xff\xfe", limit="１٠", category="\u202e", headers={})
async def test_catalog_search_answers_any_query_without_5xx(
    fuzzer: Fuzzer, q: str | bytes, limit: str | None, category: str | None, headers: dict[str, bytes]
) -> None:
    query: dict[str, str | bytes | None] = {"q": q, "limit": limit, "category": category}
    await fuzzer.ask("GET", path_of("/api/catalog/{}", "search", query), headers=headers)


@FUZZ
@given(
    method_path=st.sampled_from([("GET", "/api/webhooks/secret"), ("POST", "/api/webhooks/secret/rotate"),
                                 ("POST", "/api/webhooks/secret")]),
    headers=common_headers,
)  # fmt: skip
@example(method_path=("GET", "/api/webhooks/secret"), headers={"X-Payment-Token": "s402pt_pay_٣.é".encode()})
@example(method_path=("GET", "/api/webhooks/secret"), headers={"X-Payment-Token": b"s402pt_pay_\xff.x"})
@example(
    method_path=("POST", "/api/webhooks/secret/rotate"), headers={"Authorization": f"Bearer {KEY}".encode() + b"\xff"}
)
async def test_the_webhook_secret_answers_bad_credentials_with_4xx(
    fuzzer: Fuzzer, method_path: tuple[str, str], headers: dict[str, bytes]
) -> None:
    await fuzzer.ask(*method_path, headers=headers)


# ---------------------------------------------------------------- MCP

MCP_METHODS = ["initialize", "ping", "tools/list", "tools/call", "server/discover", "notifications/initialized"]
VERSIONS = ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
PROTOCOL_META = "io.modelcontextprotocol/protocolVersion"
MODERN_META = {PROTOCOL_META: "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
MODERN_HEADERS = {"MCP-Protocol-Version": b"2026-07-28", "Mcp-Method": b"tools/call", "Mcp-Name": b"face_comparison"}
FREE_CALL = {"name": "face_comparison", "arguments": VALID_INPUT["face-comparison"]}
MCP_TEMPLATES: list[tuple[dict[str, Any], dict[str, bytes]]] = [
    ({"method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}}}, {}),
    ({"method": "tools/list"}, {"MCP-Protocol-Version": b"2025-11-25"}),
    ({"method": "tools/call", "params": {"name": "face_detection", "arguments": VALID_INPUT[PRICED]}}, {}),
    ({"method": "tools/call", "params": {**FREE_CALL, "_meta": {"progressToken": 1}}}, {}),
    ({"method": "tools/call", "params": {**FREE_CALL, "_meta": MODERN_META}}, MODERN_HEADERS),
]
mcp_changes = changes(("id",), ("jsonrpc",), ("method",), ("params",), ("params", "name"), ("params", "arguments"),
                      ("params", "arguments", "ImageURLA"), ("params", "arguments", "paymentToken"),
                      ("params", "_meta", "x402/payment"), ("params", "_meta", "progressToken"),
                      ("params", "_meta", PROTOCOL_META), ("params", "protocolVersion"))  # fmt: skip
mcp_requests = st.one_of(
    st.tuples(st.sampled_from(MCP_TEMPLATES), mcp_changes, st.booleans(), bad_utf8).map(
        lambda drawn: (dumped(apply({"jsonrpc": "2.0", "id": 1, **drawn[0][0]}, drawn[1]), drawn[2], drawn[3]),
                       drawn[0][1])
    ),
    st.tuples(documents(json_values(("jsonrpc", "id", "method", "params"))), st.just({})),
)  # fmt: skip
mcp_headers = st.fixed_dictionaries({}, optional={
    "Accept": st.sampled_from([b"application/json", b"text/event-stream", b"application/json, text/event-stream"]),
    "MCP-Protocol-Version": st.sampled_from(VERSIONS).map(str.encode) | header_values,
    "Mcp-Method": st.sampled_from(MCP_METHODS).map(str.encode) | header_values,
    "Mcp-Name": st.binary(max_size=12).map(lambda raw: b"=?base64?" + base64.b64encode(raw) + b"?=") | header_values,
})  # fmt: skip


@FUZZ
@given(message=mcp_requests, headers=mcp_headers, extra=common_headers, content_type=content_types)
@example(message=(b'{"jsonrpc": "2.0", "id": 1, "method": "\xff\xfe"}', {}), headers={}, extra={},
         content_type=b"application/json")  # fmt: skip
@example(message=(b"\xff", {}), headers={}, extra={}, content_type=None)
async def test_mcp_answers_bad_messages_without_5xx_or_internal_errors(
    fuzzer: Fuzzer, message: tuple[bytes, dict[str, bytes]], headers: dict[str, bytes], extra: dict[str, bytes],
    content_type: bytes | None,
) -> None:  # fmt: skip
    body, usual = message
    sent = {"Accept": b"application/json, text/event-stream", **usual, **extra, **headers}
    await fuzzer.ask("POST", "/mcp", body=body, headers=sent, content_type=content_type)


@settings(FUZZ, max_examples=40)
@given(method=st.sampled_from(["GET", "HEAD", "POST"]), headers=common_headers)
async def test_the_openapi_document_answers_any_headers_without_5xx(
    fuzzer: Fuzzer, method: str, headers: dict[str, bytes]
) -> None:
    await fuzzer.ask(method, "/openapi.json", headers=headers)
