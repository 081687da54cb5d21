"""API keys are stored hashed and rate limited per key; the operator's command line issues, lists and revokes them
and exports the payment ledger. The store runs against the session Redis; the CLI runs as a real process."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from redis.asyncio import Redis

from api import admin
from api.apikeys import ApiKey, ApiKeyStore, apikey_key, apikey_rate_key
from shared.catalog import Catalog
from shared.config import Settings
from shared.keys import LEDGER

KEY_TEXT = re.compile(r"s402k_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
SERVICE = "face-detection"


@pytest.fixture
def store(redis: Redis) -> ApiKeyStore:
    return ApiKeyStore(redis)


def run_admin(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": settings.redis_url, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    return subprocess.run(
        [sys.executable, "-m", "api.admin", *args],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# ---------------------------------------------------------------- the store


async def test_a_created_key_authenticates_and_redis_holds_only_its_hash(store: ApiKeyStore, redis: Redis) -> None:
    key, plaintext = await store.create("billing robot", [SERVICE], rate=5, burst=10)
    assert KEY_TEXT.fullmatch(plaintext) and plaintext.split("_")[1] == key.id
    assert await store.authenticate(plaintext) == key
    assert key.client_id == f"key:{key.id}" and key.revoked_at is None

    stored = {k.decode(): v.decode() for k, v in (await redis.hgetall(apikey_key(key.id))).items()}
    assert stored["hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert stored["services"] == json.dumps([SERVICE]) and stored["revokedAt"] == ""
    secret = plaintext.split("_", 2)[2]
    async for name in redis.scan_iter(match="s402:apikey*"):  # every kind of key (other tests' rate limits too)
        kind = (await redis.type(name)).decode()
        if kind == "set":
            values = list(await redis.smembers(name))
        elif kind == "hash":
            values = list((await redis.hgetall(name)).values())
        else:
            values = [await redis.dump(name) or b""]
        assert not any(secret.encode() in value for value in values)


async def test_wrong_malformed_garbage_and_revoked_keys_do_not_authenticate(store: ApiKeyStore) -> None:
    key, plaintext = await store.create("to revoke", None, rate=1, burst=1)
    prefix, key_id, secret = plaintext.split("_", 2)
    other_secret = ("A" if secret[0] != "A" else "B") + secret[1:]
    refused = [
        f"{prefix}_{key_id}_{other_secret}",
        f"{prefix}_{'0' * 12}_{secret}",
        f"{prefix}_{key_id.upper()}_{secret}",
        plaintext + " ",
        plaintext[:-1],
        f"Bearer {plaintext}",
        "",
        "s402k_",
        "s402k__",
        "s402k_\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600_x",
        f"{prefix}_{key_id}_\ud800\x00é",
        "\ud800" * 50,
        "s402k_" + "é" * 194,
        plaintext + "x" * 10_000,
        "x" * 10_240,
    ]
    for presented in refused:
        assert await store.authenticate(presented) is None, presented[:80]
    assert await store.authenticate(None) is None  # type: ignore[arg-type]
    assert await store.authenticate(plaintext) == key

    revoked = await store.revoke(key.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert await store.authenticate(plaintext) is None
    assert await store.revoke(key.id) == revoked  # idempotent: the first revocation time stays
    assert revoked in await store.list()


async def test_unknown_or_odd_key_ids_are_not_found(store: ApiKeyStore) -> None:
    for key_id in ("000000000000", "rl:000000000000", "", "../x", "*"):
        assert await store.get(key_id) is None
        assert await store.revoke(key_id) is None


async def test_list_is_oldest_first_and_never_shows_a_hash(store: ApiKeyStore) -> None:
    first, first_text = await store.create("first", None, rate=1, burst=1)
    second, second_text = await store.create("second", [SERVICE, SERVICE], rate=2.5, burst=3)
    listed = await store.list()
    assert [key for key in listed if key.id in (first.id, second.id)] == [first, second]
    assert second.services == (SERVICE,)
    assert [k.created_at for k in listed] == sorted(k.created_at for k in listed)
    encoded = msgspec.json.encode(listed).decode()
    for text in (first_text, second_text):
        assert text not in encoded and hashlib.sha256(text.encode()).hexdigest() not in encoded
    assert set(msgspec.json.decode(encoded)[0]) == {
        "id", "name", "services", "rate", "burst", "createdAt", "revokedAt"
    }  # fmt: skip


def test_a_key_allows_its_services_or_every_service() -> None:
    common = {"name": "n", "rate": 1.0, "burst": 1, "created_at": "2025-01-01T00:00:00.000000Z", "revoked_at": None}
    some = ApiKey(id="0123456789ab", services=("face-detection", "body-counting"), **common)
    every = ApiKey(id="0123456789ab", services=None, **common)
    assert some.allows("face-detection") and some.allows("body-counting") and not some.allows("face-compare")
    assert every.allows("face-compare") and every.allows("anything")


@pytest.mark.parametrize(
    ("name", "services", "rate", "burst", "message"),
    [
        ("", None, 1, 1, "name"),
        ("x" * 65, None, 1, 1, "name"),
        ("line\nbreak", None, 1, 1, "name"),
        ("ok", [], 1, 1, "services"),
        ("ok", "face-detection", 1, 1, "services"),
        ("ok", None, 0, 1, "rate"),
        ("ok", None, -1, 1, "rate"),
        ("ok", None, 10_000.5, 1, "rate"),
        ("ok", None, math.nan, 1, "rate"),
        ("ok", None, math.inf, 1, "rate"),
        ("ok", None, 1, 0, "burst"),
        ("ok", None, 1, 10_001, "burst"),
        ("ok", None, 1, 1.5, "burst"),
    ],
)
async def test_create_refuses_bad_input_with_a_clear_message(
    store: ApiKeyStore, name: str, services: list[str] | None, rate: float, burst: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await store.create(name, services, rate, burst)


async def test_rate_limit_allows_the_burst_then_says_how_long_to_wait(store: ApiKeyStore) -> None:
    key, _ = await store.create("bursty", None, rate=1, burst=3)
    assert [(await store.check_rate_state(key)).wait_s for _ in range(3)] == [0.0, 0.0, 0.0]
    first_wait = (await store.check_rate_state(key)).wait_s
    assert 0 < first_wait <= 1.0
    second_wait = (await store.check_rate_state(key)).wait_s
    assert 0 < second_wait <= first_wait  # the refused call booked nothing: the wait did not grow by 1 s


async def test_a_refused_key_may_go_once_its_wait_is_over(store: ApiKeyStore, redis: Redis) -> None:
    key, _ = await store.create("fast", None, rate=50, burst=1)
    assert (await store.check_rate_state(key)).wait_s == 0.0
    wait = (await store.check_rate_state(key)).wait_s
    assert 0 < wait <= 0.02
    await asyncio.sleep(wait + 0.002)
    assert (await store.check_rate_state(key)).wait_s == 0.0
    assert 0 < await redis.pttl(apikey_rate_key(key.id)) <= 20  # the limiter's state expires when idle


# ---------------------------------------------------------------- the command line


async def test_cli_creates_a_key_shown_once_with_canonical_services(
    settings: Settings, catalog: Catalog, store: ApiKeyStore
) -> None:
    service = catalog.resolve(SERVICE)
    assert service is not None
    aliases = [service.internal_service_id, service.discovery.tool_name]
    result = run_admin(settings, "keys", "create", "--name", "cli key", *[f"--service={a}" for a in aliases])
    assert result.returncode == 0, result.stderr
    notice, plaintext, record = result.stdout.splitlines()
    assert "only" in notice and "once" in notice and KEY_TEXT.fullmatch(plaintext)
    key = msgspec.json.decode(record, type=ApiKey)
    assert key.services == (SERVICE,) and (key.rate, key.burst, key.name) == (10.0, 20, "cli key")
    assert await store.authenticate(plaintext) == key


async def test_cli_lists_keys_without_hashes_or_key_text(settings: Settings, store: ApiKeyStore) -> None:
    key, plaintext = await store.create("listed key", [SERVICE], rate=2, burst=4)
    digest = hashlib.sha256(plaintext.encode()).hexdigest()
    table = run_admin(settings, "keys", "list")
    lines = run_admin(settings, "keys", "list", "--json")
    assert table.returncode == lines.returncode == 0
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "SERVICES", "RATE", "BURST", "CREATED", "REVOKED"]
    assert any(row.split() == [key.id, "listed", "key", SERVICE, "2/s", "4", key.created_at, "-"] for row in rows)
    assert key in [msgspec.json.decode(line, type=ApiKey) for line in lines.stdout.splitlines()]
    for output in (table.stdout, lines.stdout):
        assert plaintext not in output and digest not in output and "hash" not in output


async def test_cli_revokes_a_key_and_refuses_unknown_ids_and_services(settings: Settings, store: ApiKeyStore) -> None:
    key, plaintext = await store.create("revoked by cli", None, rate=1, burst=1)
    revoked = run_admin(settings, "keys", "revoke", key.id)
    assert revoked.returncode == 0, revoked.stderr
    assert msgspec.json.decode(revoked.stdout, type=ApiKey).revoked_at is not None
    assert await store.authenticate(plaintext) is None

    unknown = run_admin(settings, "keys", "revoke", "ffffffffffff")
    assert unknown.returncode == 1 and "ffffffffffff" in unknown.stderr and unknown.stdout == ""
    bad_service = run_admin(settings, "keys", "create", "--name", "x", "--service", "no-such-service")
    assert bad_service.returncode == 2 and "no-such-service" in bad_service.stderr
    assert "Traceback" not in unknown.stderr + bad_service.stderr


def test_cli_create_json_and_usage_errors_in_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    assert admin.main(["keys", "create", "--name", "json key", "--rate", "0.5", "--burst", "1", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert KEY_TEXT.fullmatch(created["key"]) and created["apiKey"]["rate"] == 0.5
    assert admin.main(["keys", "create", "--name", "x", "--burst", "0"]) == 2
    assert "burst" in capsys.readouterr().err
    assert admin.main(["ledger", "export", "--after", "yesterday"]) == 2
    assert admin.main(["keys"]) == 2


def test_cli_reports_an_unreachable_redis_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    assert admin.main(["keys", "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "127.0.0.1:1" in err and "hunter2" not in err


async def ledger_mark(redis: Redis) -> str:
    newest = await redis.xrevrange(LEDGER, count=1)
    return newest[0][0].decode() if newest else "0-0"


async def test_ledger_exports_as_json_lines_in_pages_keeping_field_order(settings: Settings, redis: Redis) -> None:
    mark = await ledger_mark(redis)
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(2_500):
            pipe.xadd(LEDGER, {"event": "settled", "paymentId": f"pay_{n}", "zeta": "z", "amountCents": n})
        ids = [entry_id.decode() for entry_id in await pipe.execute()]
    result = run_admin(settings, "ledger", "export", "--after", mark)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == ids  # every entry once, in order, across page boundaries
    assert list(rows[7]) == ["id", "event", "paymentId", "zeta", "amountCents"]
    assert rows[7] == {"id": ids[7], "event": "settled", "paymentId": "pay_7", "zeta": "z", "amountCents": "7"}


async def test_ledger_exports_csv_with_fixed_columns_then_the_others_sorted(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    mark = await ledger_mark(redis)
    first = await redis.xadd(LEDGER, {"event": "paid", "paymentId": "pay_a", "zeta": "1", "calls": 3})
    second = await redis.xadd(LEDGER, {"reason": "refund, partial", "alpha": "2", "event": "refunded"})
    target = tmp_path / "ledger.csv"
    result = run_admin(settings, "ledger", "export", "--format", "csv", "--output", str(target), "--after", mark)
    assert result.returncode == 0 and result.stdout == "", result.stderr
    columns, rows = read_csv(target)
    assert columns == [*admin.LEDGER_COLUMNS, "alpha", "zeta"] and columns[:3] == ["id", "event", "at"]
    assert [row["id"] for row in rows] == [first.decode(), second.decode()]
    assert rows[0]["calls"] == "3" and rows[0]["alpha"] == "" and rows[0]["zeta"] == "1"
    assert rows[1]["reason"] == "refund, partial" and rows[1]["paymentId"] == ""
    assert sorted(os.listdir(tmp_path)) == ["ledger.csv"]  # the .partial file was renamed


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames or []), list(reader)
