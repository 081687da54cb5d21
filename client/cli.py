"""`server402`: the command line of the server402 client (the user's manual is docs/cli.md).

    server402 call TOOL [--input JSON | --input-file FILE] [NAME=TEXT | NAME:=JSON ...] [--wait N] [--async]
    server402 jobs get JOB_ID [--wait N] | jobs cancel JOB_ID
    server402 buy SERVICE --calls N --wallet-key HEX
    server402 batch submit FILE|- [--chunk-size N] [--state FILE] [--no-wait] [--webhook URL]
    server402 batch status|results|cancel BATCH_ID|--state FILE

The operator's commands are not here: `server402-admin keys ...|ledger ...` (python -m api.admin).

Global options (before or after the command): --url (SERVER402_URL), --api-key (SERVER402_API_KEY), --token
(SERVER402_PAYMENT_TOKEN), --json. Exit codes: 0 done; 1 a refused or failed call, or an operational error (the
server unreachable, a file unreadable), said in one line on stderr; 2 a usage error. Keys, tokens and wallet keys
are never printed, except the token `buy` was asked to buy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from client.batch_commands import add_batch_commands
from client.errors import ApiError
from client.http import Answer
from client.options import (
    EPILOG,
    Handler,
    Leaf,
    UsageError,
    add_globals,
    client_of,
    emit,
    fail,
    leaf_maker,
    positive_int,
    seconds,
)
from client.wallet import Wallet

PROG = "server402"


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    parser = build_parser(env)
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    return run(args.handler, args)


def run(handler: Handler, args: argparse.Namespace) -> int:
    """The command, with every failure it can meet said in one line on stderr."""
    try:
        return handler(args)
    except UsageError as exc:
        return fail(str(exc), 2)
    except ApiError as exc:
        return fail(str(exc), 1)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as a pipeline's writer does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        return fail(f"{exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}", 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Call server402's tools, follow jobs, buy calls and run batches.",
        epilog=EPILOG,
    )
    add_globals(parser, env)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    leaf = leaf_maker(env)
    add_call(commands, leaf, env)
    jobs = commands.add_parser("jobs", help="read or cancel a job", description="Read or cancel a job.")
    job_commands = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    get = leaf(job_commands, "get", "a job's view (exit 0 whatever its status)", cmd_job_get)
    get.add_argument("job_id", metavar="JOB_ID")
    get.add_argument("--wait", type=seconds, default=0, metavar="N", help="long-poll until it finishes (<= 60 s)")
    cancel = leaf(job_commands, "cancel", "cancel a queued job, or ask a running one to stop", cmd_job_cancel)
    cancel.add_argument("job_id", metavar="JOB_ID")
    buy = leaf(commands, "buy", "buy a bundle of calls with x402; prints its payment token", cmd_buy)
    buy.add_argument("service", metavar="SERVICE", help="the service's id (or legacy id, or tool name)")
    buy.add_argument("--calls", type=positive_int, required=True, metavar="N", help="how many calls to buy")
    add_wallet(buy, env, required=True)
    add_batch_commands(commands, leaf)
    return parser


def add_wallet(parser: argparse.ArgumentParser, env: Mapping[str, str], *, required: bool) -> None:
    wallet_key = env.get("SERVER402_WALLET_KEY")
    parser.add_argument(
        "--wallet-key",
        default=wallet_key,
        required=required and not wallet_key,
        metavar="HEX",
        help="EVM private key paying with x402 (env SERVER402_WALLET_KEY, better than the command line)",
    )


# ---------------------------------------------------------------- call


def add_call(commands: Any, leaf: Leaf, env: Mapping[str, str]) -> None:
    call = leaf(
        commands,
        "call",
        "call one tool and print its result",
        cmd_call,
        "Call one tool and print its result (the tool's JSON envelope). A call still running after --wait prints "
        "its job instead (exit 0): follow it with `server402 jobs get JOB_ID --wait 60`. A priced tool is paid "
        "with --token, or with x402 from --wallet-key.",
    )
    call.add_argument("tool", metavar="TOOL", help="the tool's id, legacy id or tool name (see GET /api/catalog)")
    call.add_argument(
        "params", nargs="*", metavar="NAME=TEXT|NAME:=JSON", help="parameters: a text, or any JSON value after :="
    )
    source = call.add_mutually_exclusive_group()
    source.add_argument("--input", metavar="JSON", help="the parameters as one JSON object")
    source.add_argument("--input-file", metavar="FILE", help="a file holding that JSON object (- for stdin)")
    add_wallet(call, env, required=False)
    call.add_argument(
        "--wait", type=seconds, default=60.0, metavar="N", help="seconds to wait for the result in all (default 60)"
    )
    call.add_argument("--async", dest="respond_async", action="store_true", help="do not wait: print the job at once")
    call.add_argument("--idempotency-key", metavar="KEY", help="the same key and input return the same job")


def wallet_of(args: argparse.Namespace, *, spend_limit: bool = True) -> Wallet | None:
    if not args.wallet_key:
        return None
    try:
        return Wallet(args.wallet_key, spend_limit=spend_limit)
    except ValueError as exc:  # never the key itself in the message
        raise UsageError(f"--wallet-key: {exc}") from None


def cmd_job_get(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        emit(client.job(args.job_id, wait=args.wait), args.json)
    return 0


def cmd_job_cancel(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        emit(client.cancel_job(args.job_id), args.json)
    return 0


def cmd_buy(args: argparse.Namespace) -> int:
    wallet = wallet_of(args, spend_limit=False)  # the caller chose the amount by choosing --calls
    assert wallet is not None  # --wallet-key is required
    with client_of(args) as client:
        payment = client.buy(args.service, args.calls, wallet)
    if args.json:
        emit(payment, True)
        return 0
    cents = payment.get("amountCents")
    price = f"USD {cents / 100:.2f}" if isinstance(cents, int) else "its price"
    print(
        f"bought {payment.get('maxCalls')} call(s) of {payment.get('serviceId')} for {price} "
        f"(payment {payment.get('paymentId')}, paid by {wallet.address}); its token:",
        file=sys.stderr,
    )
    print(payment.get("token", ""))
    return 0


def read_params(args: argparse.Namespace) -> dict[str, Any]:
    """The tool's parameters: --input or --input-file (a JSON object), then NAME=TEXT and NAME:=JSON pairs."""
    params: Any = {}
    if args.input is not None:
        params = parse_json(args.input, "--input")
    elif args.input_file is not None:
        text = sys.stdin.read() if args.input_file == "-" else Path(args.input_file).read_text(encoding="utf-8")
        params = parse_json(text, "--input-file")
    if not isinstance(params, dict):
        raise UsageError("the input must be a JSON object of the tool's parameters")
    for pair in args.params:
        name, is_json, value = split_pair(pair)
        params[name] = parse_json(value, pair) if is_json else value
    return params


def split_pair(pair: str) -> tuple[str, bool, str]:
    name, sep, value = pair.partition("=")
    if not sep or not name or name == ":":
        raise UsageError(f"{pair!r}: parameters are NAME=TEXT or NAME:=JSON")
    return (name[:-1], True, value) if name.endswith(":") else (name, False, value)


def parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{where}: not valid JSON ({exc})") from None


def cmd_call(args: argparse.Namespace) -> int:
    params = read_params(args)
    wallet = wallet_of(args)
    with client_of(args) as client:
        try:
            answer = client.call(
                args.tool,
                params,
                wait=args.wait,
                respond_async=args.respond_async,
                idempotency_key=args.idempotency_key,
                wallet=wallet,
            )
        except ApiError as exc:
            raise with_hint(exc, args) from None
    return print_answer(answer, args.json)


def print_answer(answer: Answer, compact: bool) -> int:
    if answer.done:
        emit(answer.result, compact)
        return 0
    job = answer.job or {}
    emit(job, compact)
    job_id = job.get("jobId")
    print(
        f"job {job_id} is {job.get('status')}; follow it with: server402 jobs get {job_id} --wait 60", file=sys.stderr
    )
    return 0


def with_hint(exc: ApiError, args: argparse.Namespace) -> ApiError:
    """A 402 says how to pay."""
    if exc.status != 402 or args.wallet_key:
        return exc
    hint = f"pay with --wallet-key, or buy calls: server402 buy {args.tool} --calls N --wallet-key HEX"
    if args.token:
        hint = "check --token (its service, its calls left), or " + hint[:1].lower() + hint[1:]
    return ApiError(exc.status, exc.code, f"{exc.message}; {hint}", exc.body)


if __name__ == "__main__":
    raise SystemExit(main())
