"""`python -m api.admin`: the operator's command line for API keys and the payment ledger.

    python -m api.admin keys create --name NAME [--service ID ...] [--rate R] [--burst B] [--json]
    python -m api.admin keys list [--json]
    python -m api.admin keys revoke KEY_ID
    python -m api.admin ledger export [--format jsonl|csv] [--output FILE] [--after STREAM_ID]

Settings come from the environment exactly as for `python -m api` (REDIS_URL, SERVER402_OPERATOR_FILE, ...).
Exit codes: 0 done; 1 not found, or an operational error (Redis unreachable, output not writable), reported in
one line; 2 a usage error (bad arguments, unknown service, invalid settings).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TextIO
from urllib.parse import urlsplit

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.apikeys import ApiKey, ApiKeyStore, validate
from client.files import output
from shared.catalog import Catalog
from shared.config import ConfigError, Settings
from shared.keys import LEDGER

PROG = "server402-admin"  # also python -m api.admin
PAGE_SIZE = 1000
LEDGER_COLUMNS = (
    *("id", "event", "at", "paymentId", "serviceId", "clientId", "amountCents", "amountAtomic", "calls", "jobId"),
    *("provider", "network", "payer", "transaction", "reason", "creditPaymentId"),
)
MAX_STREAM_PART = 2**64 - 1
_STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
_json = msgspec.json.Encoder()

Entry = tuple[str, dict[str, str]]
Command = Callable[[argparse.Namespace, Redis, Settings, TextIO], Awaitable[int]]


class UsageError(Exception):
    """The command cannot run as asked (exit 2)."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        return fail(str(exc), 2)
    try:
        with output(getattr(args, "output", None)) as out:
            return asyncio.run(run(args.command, args, settings, out))
    except (ConfigError, UsageError) as exc:
        return fail(str(exc), 2)
    except RedisError as exc:
        return fail(f"Redis at {redis_location(settings.redis_url)}: {exc}", 1)
    except OSError as exc:
        return fail(str(exc), 1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="server402 operator commands")
    areas = parser.add_subparsers(dest="area", required=True)
    keys = areas.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="issue a key (its text is shown once)")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument("--service", action="append", dest="services", metavar="ID", help="repeat; default: all")
    create.add_argument("--rate", type=float, default=10.0, help="requests per second (default 10)")
    create.add_argument("--burst", type=int, default=20, help="requests allowed at once (default 20)")
    create.add_argument("--json", action="store_true", help='one JSON object {"key": ..., "apiKey": {...}}')
    create.set_defaults(command=keys_create)
    listing = keys.add_parser("list", help="every key, revoked ones included")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    listing.set_defaults(command=keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key (again: no change)")
    revoke.add_argument("key_id", metavar="KEY_ID")
    revoke.set_defaults(command=keys_revoke)
    ledger = areas.add_parser("ledger", help="the payment ledger").add_subparsers(dest="action", required=True)
    export = ledger.add_parser("export", help=f"write every entry of {LEDGER}")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", metavar="FILE", help="default: stdout")
    export.add_argument("--after", type=stream_id, metavar="STREAM_ID", help="only entries after this id (ms-seq)")
    export.set_defaults(command=ledger_export)
    return parser


def stream_id(raw: str) -> str:
    match = _STREAM_ID.fullmatch(raw)
    if match is None or any(int(part) > MAX_STREAM_PART for part in match.groups()):
        raise argparse.ArgumentTypeError(f"{raw!r} is not a stream id like 1700000000000-0")
    return raw


async def run(command: Command, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=10)
    try:
        return await command(args, redis, settings, out)
    finally:
        await redis.aclose()


# ---------------------------------------------------------------- keys


async def keys_create(args: argparse.Namespace, redis: Redis, settings: Settings, out: TextIO) -> int:
    services = resolve_services(settings, args.services)
    try:
        validate(args.name, services, args.rate, args.burst)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    key, plaintext = await ApiKeyStore(redis).create(args.name, services, args.rate, args.burst)
    if args.json:
        print(_json.encode({"key": plaintext, "apiKey": key}).decode(), file=out)
    else:
        print("API key (shown only this once; it is stored hashed and cannot be recovered):", file=out)
        print(plaintext, file=out)
        print(_json.encode(key).decode(), file=out)
    return 0


def resolve_services(settings: Settings, requested: list[str] | None) -> list[str] | None:
    """Canonical ids of the services asked for (ids, legacy ids or tool names); None: every service."""
    if not requested:
        return None
    catalog = Catalog.load(settings.operator_file)
    unknown = [name for name in requested if catalog.resolve(name) is None]
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise UsageError(f"unknown service {names}: use an id, legacy id or tool name listed by GET /api/catalog")
    return list(dict.fromkeys(service.id for name in requested if (service := catalog.resolve(name))))


async def keys_list(args: argparse.Namespace, redis: Redis, settings: Settings, out: TextIO) -> int:
    found = await ApiKeyStore(redis).list()
    if args.json:
        for key in found:
            print(_json.encode(key).decode(), file=out)
    elif found:
        print_table([key_row(key) for key in found], out)
    else:
        print("no API keys", file=out)
    return 0


def key_row(key: ApiKey) -> dict[str, str]:
    return {
        "ID": key.id,
        "NAME": key.name,
        "SERVICES": "*" if key.services is None else ",".join(key.services),
        "RATE": f"{key.rate:g}/s",
        "BURST": str(key.burst),
        "CREATED": key.created_at,
        "REVOKED": key.revoked_at or "-",
    }


def print_table(rows: list[dict[str, str]], out: TextIO) -> None:
    widths = {column: max(len(column), *(len(row[column]) for row in rows)) for column in rows[0]}
    for row in [{column: column for column in widths}, *rows]:
        print("  ".join(row[column].ljust(width) for column, width in widths.items()).rstrip(), file=out)


async def keys_revoke(args: argparse.Namespace, redis: Redis, settings: Settings, out: TextIO) -> int:
    key = await ApiKeyStore(redis).revoke(args.key_id)
    if key is None:
        return fail(f"no API key with id {args.key_id!r}", 1)
    print(_json.encode(key).decode(), file=out)
    return 0


# ---------------------------------------------------------------- ledger


async def ledger_export(args: argparse.Namespace, redis: Redis, settings: Settings, out: TextIO) -> int:
    """Entries after --after up to the newest one when the export starts, in pages (never all in memory)."""
    newest = await redis.xrevrange(LEDGER, count=1)
    last = _text(newest[0][0]) if newest else None
    if args.format == "jsonl":
        await write_jsonl(ledger_pages(redis, args.after, last), out)
        return 0
    columns = [*LEDGER_COLUMNS, *await extra_columns(ledger_pages(redis, args.after, last))]
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    async for page in ledger_pages(redis, args.after, last):
        writer.writerows({**fields, "id": entry_id} for entry_id, fields in page)
    return 0


async def ledger_pages(redis: Redis, after: str | None, last: str | None) -> AsyncIterator[list[Entry]]:
    """Pages of up to PAGE_SIZE entries after `after` (exclusive) up to `last` (inclusive); none when no `last`."""
    start = "-" if after is None else f"({after}"
    while last is not None:
        raw = await redis.xrange(LEDGER, min=start, max=last, count=PAGE_SIZE)
        if not raw:
            return
        page = [(_text(entry_id), {_text(k): _text(v) for k, v in fields.items()}) for entry_id, fields in raw]
        yield page
        if len(raw) < PAGE_SIZE:
            return
        start = f"({page[-1][0]}"


async def write_jsonl(pages: AsyncIterator[list[Entry]], out: TextIO) -> None:
    """One object per entry: the stream id first (it wins over a field named `id`), then the fields in order."""
    async for page in pages:
        for entry_id, fields in page:
            row = {"id": entry_id, **{name: value for name, value in fields.items() if name != "id"}}
            out.write(_json.encode(row).decode() + "\n")


async def extra_columns(pages: AsyncIterator[list[Entry]]) -> list[str]:
    seen: set[str] = set()
    async for page in pages:
        for _, fields in page:
            seen.update(fields)
    return sorted(seen.difference(LEDGER_COLUMNS))


# ---------------------------------------------------------------- plumbing


def redis_location(url: str) -> str:
    """Where Redis is, without the password a URL may carry."""
    parts = urlsplit(url)
    return parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"


def fail(message: str, code: int) -> int:
    print(f"server402-admin: {message}", file=sys.stderr)
    return code


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


if __name__ == "__main__":
    raise SystemExit(main())
