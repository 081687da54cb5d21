"""What every `server402` command shares: the global options, the client they make, output and failures."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from client.http import DEFAULT_URL, Server402

EPILOG = "exit codes: 0 done; 1 a refused or failed call, or an operational error; 2 a usage error"
Handler = Callable[[argparse.Namespace], int]
Leaf = Callable[..., argparse.ArgumentParser]


class UsageError(Exception):
    """The command cannot run as asked (exit 2)."""


def add_globals(parser: argparse.ArgumentParser, env: Mapping[str, str], *, suppress: bool = False) -> None:
    """The global options; on a command's own parser they only override (SUPPRESS keeps the global value)."""
    default: Callable[[Any], Any] = (lambda _: argparse.SUPPRESS) if suppress else (lambda value: value)
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--url",
        default=default(env.get("SERVER402_URL") or DEFAULT_URL),
        help=f"the API's base URL (env SERVER402_URL; default {DEFAULT_URL})",
    )
    group.add_argument("--api-key", default=default(env.get("SERVER402_API_KEY")), help="env SERVER402_API_KEY")
    group.add_argument(
        "--token",
        default=default(env.get("SERVER402_PAYMENT_TOKEN")),
        help="payment token; for a batch, one per paid service, comma-separated (env SERVER402_PAYMENT_TOKEN)",
    )
    group.add_argument(
        "--json", action="store_true", default=default(False), help="compact JSON output (one object per line)"
    )


def leaf_maker(env: Mapping[str, str]) -> Leaf:
    """A function adding a command that runs `handler`, with the global options accepted after it too."""

    def leaf(group: Any, name: str, summary: str, handler: Handler, description: str = "") -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(
            name, help=summary, description=description or summary[0].upper() + summary[1:] + ".", epilog=EPILOG
        )
        add_globals(parser, env, suppress=True)
        parser.set_defaults(handler=handler)
        return parser

    return leaf


def seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError("seconds must be from 0 to 86400")
    return value


def positive_int(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of at least 1")
    return int(raw)


def client_of(args: argparse.Namespace) -> Server402:
    return Server402(args.url, api_key=args.api_key or None, payment_token=args.token or None)


def emit(value: Any, compact: bool) -> None:
    """JSON on stdout: indented for a person, or one line with --json."""
    if compact:
        print(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    else:
        print(json.dumps(value, ensure_ascii=False, indent=2))


def fail(message: str, code: int) -> int:
    print(f"server402: {message}", file=sys.stderr)
    return code
