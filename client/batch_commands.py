"""`server402 batch submit|status|results|cancel`: the batch commands (the resumable submission itself is in
client/batch_submit.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, Any, TextIO

from client.batch_submit import (
    ChunkRefused,
    ItemReader,
    State,
    StateError,
    counts_of,
    finished,
    item_errors,
    skip_recorded,
    submit_new,
    summary,
    watch,
)
from client.errors import ApiError
from client.files import output
from client.http import Server402
from client.options import Leaf, UsageError, client_of, emit, fail, positive_int, seconds

DEFAULT_CHUNK = 1000
MAX_CHUNK = 10_000  # the most items one batch may hold
STATE_SUFFIX = ".server402.json"

SUBMIT_HELP = f"""Submit JSON lines (one item {{"customId", "serviceId", "input"}} a line) as batches of --chunk-size
items, then show a progress bar until every item has finished, and a summary. Each chunk is submitted as soon as it
is full, so items can be piped in as they are made. The batches made are recorded in the state file at once
(default FILE{STATE_SUFFIX}; required for -): run the same command again after an interruption and nothing is
submitted twice. Paid services are paid with --token (one token per paid service, comma-separated, each holding
enough calls). Exit 0 when every item has finished, even when some items failed (the summary and `batch results`
say which); 1 when the server refused a chunk or could not be reached."""


def add_batch_commands(commands: Any, leaf: Leaf) -> None:
    batch = commands.add_parser("batch", help="submit and follow batches", description="Submit and follow batches.")
    actions = batch.add_subparsers(dest="action", required=True, metavar="ACTION")
    submit = leaf(
        actions, "submit", "submit JSON lines as batches, resumably, and follow them", cmd_submit, SUBMIT_HELP
    )
    submit.add_argument("file", metavar="FILE|-", help="the items, one JSON object a line (- for stdin)")
    submit.add_argument(
        "--chunk-size",
        type=chunk_size,
        metavar="N",
        help=f"items per batch (default {DEFAULT_CHUNK}, at most {MAX_CHUNK})",
    )
    submit.add_argument("--state", metavar="FILE", help=f"the state file (default FILE{STATE_SUFFIX})")
    submit.add_argument("--no-wait", action="store_true", help="stop once everything is submitted")
    submit.add_argument("--webhook", metavar="URL", help="where the server posts batch.completed (signed)")
    submit.add_argument(
        "--webhook-events", metavar="EVENTS", help="comma-separated, e.g. batch.completed,job.failed (with --webhook)"
    )
    status = leaf(actions, "status", "batches' progress and counts", cmd_status)
    add_target(status)
    status.add_argument(
        "--wait", type=seconds, default=0, metavar="N", help="long-poll each batch until it finishes (<= 60 s)"
    )
    results = leaf(actions, "results", "the finished items' results, as JSON lines (completion order)", cmd_results)
    add_target(results)
    results.add_argument("--output", metavar="FILE", help="write them to FILE (default stdout)")
    results.add_argument(
        "--offset", type=int, default=0, metavar="N", help="skip the first N lines (only with BATCH_ID)"
    )
    cancel = leaf(actions, "cancel", "cancel what has not started (given back)", cmd_cancel)
    add_target(cancel)


def add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("batch_id", nargs="?", metavar="BATCH_ID", help="one batch")
    parser.add_argument("--state", metavar="FILE", help="every batch of a `batch submit` state file")


def chunk_size(raw: str) -> int:
    value = positive_int(raw)
    if value > MAX_CHUNK:
        raise argparse.ArgumentTypeError(f"a batch holds at most {MAX_CHUNK} items")
    return value


# ---------------------------------------------------------------- submit


def cmd_submit(args: argparse.Namespace) -> int:
    state = submit_state(args)
    try:
        views = submit_and_follow(args, state)
    except ChunkRefused as refused:
        return report_refused(refused, state)
    except StateError as exc:
        return fail(str(exc), 1)
    except ApiError as exc:  # while following the batches: they are all recorded
        return fail(f"{exc}; {state.path} lists every batch submitted: run the same command to go on", 1)
    except KeyboardInterrupt:
        return fail(f"interrupted; {state.path} lists every batch submitted: run the same command to resume", 130)
    if views is not None:
        counts = counts_of(views)
        if args.json:
            emit({"batches": state.batch_ids, "requestCounts": counts}, True)
        else:
            print(summary(counts, len(views)))
    return 0


def submit_and_follow(args: argparse.Namespace, state: State) -> list[dict[str, Any]] | None:
    """Submit what the state does not hold yet, then follow every batch: their views (None: nothing to follow)."""
    log = sys.stderr
    with open_input(args.file) as stream, client_of(args) as client:
        reader = ItemReader(stream)
        if skip_recorded(reader, state, log):
            submit_new(client, reader, state, log, webhook=args.webhook, events=args.webhook_events)
        if not state.batches:
            print("no items in the input: nothing submitted", file=log)
            return None
        if args.no_wait:
            report_submitted(state, args.json)
            return None
        return watch(client, state.batch_ids, progress=log)


def submit_state(args: argparse.Namespace) -> State:
    if args.webhook_events and not args.webhook:
        raise UsageError("--webhook-events needs --webhook")
    if args.state is None and args.file == "-":
        raise UsageError("reading items from stdin (-) needs --state FILE: it is how a re-run knows what was sent")
    path = Path(args.state or args.file + STATE_SUFFIX)
    try:
        state = State.load(path)
    except StateError as exc:
        raise UsageError(str(exc)) from None
    if state is None:
        return State(path=path, input=args.file, chunk_size=args.chunk_size or DEFAULT_CHUNK)
    if args.chunk_size is not None and args.chunk_size != state.chunk_size:
        raise UsageError(
            f"{path} was made with --chunk-size {state.chunk_size}: resume with that size (or leave it out)"
        )
    return state


@contextmanager
def open_input(name: str) -> Iterator[IO[bytes]]:
    if name == "-":
        with nullcontext(sys.stdin.buffer) as stdin:
            yield stdin
        return
    with Path(name).open("rb") as stream:
        yield stream


def report_submitted(state: State, compact: bool) -> None:
    if compact:
        emit({"batches": state.batch_ids}, True)
    else:
        print("\n".join(state.batch_ids))


def report_refused(refused: ChunkRefused, state: State) -> int:
    chunk, error = refused.chunk, refused.error
    lines = f"input lines {chunk.line_numbers[0]}-{chunk.line_numbers[-1]}"
    outcome = "may not have been submitted" if error.status == 0 else "were not submitted"
    fail(f"items {chunk.first}-{chunk.last} ({lines}) {outcome}: {error}", 1)
    for line in item_errors(refused, error.body) + needed(error.body):
        print(line, file=sys.stderr)
    before = f"the {len(state.batches)} batch(es) before them are recorded in {state.path}; " if state.batches else ""
    print(f"{before}fix the cause and run the same command again: nothing is submitted twice", file=sys.stderr)
    return 1


def needed(body: Any) -> list[str]:
    """A batch's 402: what to buy."""
    wanted = body.get("needed") if isinstance(body, dict) else None
    return [
        f"  needs {need.get('calls')} call(s) of {need.get('serviceId')}: "
        f"server402 buy {need.get('serviceId')} --calls {need.get('calls')} --wallet-key HEX"
        for need in (wanted if isinstance(wanted, list) else [])
        if isinstance(need, dict)
    ]


# ---------------------------------------------------------------- status, results, cancel


def targets(args: argparse.Namespace) -> list[str]:
    if (args.batch_id is None) == (args.state is None):
        raise UsageError("name one BATCH_ID or --state FILE")
    if args.batch_id is not None:
        return [args.batch_id]
    try:
        state = State.load(Path(args.state))
    except StateError as exc:
        raise UsageError(str(exc)) from None
    if state is None:
        raise UsageError(f"no state file {args.state}")
    return state.batch_ids


def cmd_status(args: argparse.Namespace) -> int:
    ids = targets(args)
    with client_of(args) as client:
        views = [client.batch(batch_id, wait=args.wait) for batch_id in ids]
    show(views, args.json)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    ids = targets(args)
    with client_of(args) as client:
        views = [client.cancel_batch(batch_id) for batch_id in ids]
    show(views, args.json)
    return 0


def show(views: list[dict[str, Any]], compact: bool) -> None:
    if compact:
        for view in views:
            emit(view, True)
        return
    for view in views:
        counts = counts_of([view])
        print(f"{view.get('batchId')}  {view.get('status')!s:<11}  {line_of(counts)}")
    if len(views) > 1:
        print(f"{'all':<40}  {'':<11}  {line_of(counts_of(views))}")


def line_of(counts: dict[str, int]) -> str:
    return (
        f"{finished(counts)}/{counts['total']} finished  succeeded {counts['succeeded']}  failed {counts['failed']}  "
        f"canceled {counts['canceled']}  expired {counts['expired']}"
    )


def cmd_results(args: argparse.Namespace) -> int:
    ids = targets(args)
    if args.offset and args.batch_id is None:
        raise UsageError("--offset counts the lines of one batch: use it with a BATCH_ID")
    if args.offset < 0:
        raise UsageError("--offset must be 0 or more")
    with client_of(args) as client, output(args.output) as out:
        for batch_id in ids:
            write_results(client, batch_id, args.offset, out)
    return 0


def write_results(client: Server402, batch_id: str, offset: int, out: TextIO) -> None:
    for line in client.batch_result_lines(batch_id, offset=offset):
        out.write(line + "\n")
