"""`server402 batch submit`: items read as JSON lines, submitted in chunks as batches, resumable.

The input is read incrementally: a chunk (`--chunk-size` items, the last one maybe fewer) is submitted as soon as
it is full, so a producer can pipe items in as it makes them. Each chunk goes as `application/x-ndjson` with
`Idempotency-Key: s402-chunk-<sha256 of its bytes>`, and the batch it made is recorded at once in the state file
(written whole, then renamed into place):

    {"format": "server402.batch-state.v1", "input": "items.jsonl", "chunkSize": 1000,
     "batches": [{"batchId": "bat_...", "firstItem": 1, "items": 1000, "sha256": "..."}, ...]}

Running the same command again after an interruption (Ctrl-C, a crash, SIGKILL, a lost connection) reads the input
from the start: the items the state's batches hold are checked against their sha256 and skipped, and the chunks
after them are cut at the same places as before. A chunk that was submitted but not yet recorded when the first
run stopped therefore has the same bytes and key again, and the server answers with the batch it already made
(nothing charged twice). So every item is submitted exactly once, however often the command is run, as long as the
state file, the chunk size and the credentials stay the same. Blank lines are skipped; a line's bytes are sent as
they are (with its line ending made `\\n`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal, TextIO

import msgspec

from client.errors import ApiError
from client.http import FINISHED_BATCH, Server402

STATE_FORMAT: Final = "server402.batch-state.v1"
KEY_PREFIX = "s402-chunk-"
POLL_S = 2.0  # the longest the progress bar waits for news of an unfinished batch


class StateError(Exception):
    """The state file cannot be used with this input (exit 1: nothing was submitted)."""


@dataclass(frozen=True)
class Chunk:
    first: int  # the number of its first item in the input, from 1
    lines: list[bytes]  # one item each, ending in "\n"
    line_numbers: list[int]  # where each item is in the input (blank lines count), for error messages

    @property
    def body(self) -> bytes:
        return b"".join(self.lines)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def last(self) -> int:
        return self.first + len(self.lines) - 1


class ItemReader:
    """Items of a JSON-lines stream, read only as far as asked (a pipe is never read ahead)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._lines: Iterator[tuple[int, bytes]] = enumerate(stream, 1)
        self.items_read = 0

    def take(self, count: int) -> Chunk | None:
        lines: list[bytes] = []
        numbers: list[int] = []
        for number, raw in self._lines:
            if not raw.strip():
                continue
            lines.append(raw.rstrip(b"\r\n") + b"\n")
            numbers.append(number)
            if len(lines) == count:
                break
        if not lines:
            return None
        chunk = Chunk(first=self.items_read + 1, lines=lines, line_numbers=numbers)
        self.items_read += len(lines)
        return chunk


class RecordedBatch(msgspec.Struct, rename="camel", frozen=True):
    batch_id: str
    first_item: int
    items: int
    sha256: str

    @property
    def last_item(self) -> int:
        return self.first_item + self.items - 1


class StateFile(msgspec.Struct, rename="camel", frozen=True):
    format: Literal["server402.batch-state.v1"]
    input: str
    chunk_size: int
    batches: list[RecordedBatch]


_state_decoder = msgspec.json.Decoder(StateFile)


@dataclass
class State:
    path: Path
    input: str
    chunk_size: int
    batches: list[RecordedBatch] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read the state file {path}: {exc.strerror}") from None
        try:
            stored = _state_decoder.decode(raw)
        except msgspec.DecodeError:
            raise StateError(f"{path} is not a server402 batch state file") from None
        return cls(path=path, input=stored.input, chunk_size=stored.chunk_size, batches=list(stored.batches))

    def save(self) -> None:
        stored = StateFile(format=STATE_FORMAT, input=self.input, chunk_size=self.chunk_size, batches=self.batches)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_bytes(msgspec.json.format(msgspec.json.encode(stored), indent=1) + b"\n")
        os.replace(partial, self.path)

    @property
    def batch_ids(self) -> list[str]:
        return [batch.batch_id for batch in self.batches]


class ChunkRefused(Exception):
    """The server refused a chunk: `chunk` says which input lines it held."""

    def __init__(self, chunk: Chunk, error: ApiError) -> None:
        super().__init__(str(error))
        self.chunk = chunk
        self.error = error


def skip_recorded(reader: ItemReader, state: State, log: TextIO) -> bool:
    """Read past the items the state's batches hold, checking they are the same. An empty input only follows the
    recorded batches (False: nothing more to submit); an input that ends inside them is another input."""
    for recorded in state.batches:
        chunk = reader.take(recorded.items)
        if chunk is None and reader.items_read == 0:
            print(f"no items in the input: following the {len(state.batches)} batch(es) of {state.path}", file=log)
            return False
        if chunk is None or len(chunk.lines) < recorded.items or chunk.digest != recorded.sha256:
            where = f"items {recorded.first_item}-{recorded.last_item}"
            raise StateError(
                f"the input's {where} are not those of batch {recorded.batch_id} recorded in {state.path} "
                f"({'it ends before' if chunk is None or len(chunk.lines) < recorded.items else 'they differ'}): "
                "this is another input, so use another --state file"
            )
    return True


def submit_new(
    client: Server402, reader: ItemReader, state: State, log: TextIO, *, webhook: str | None, events: str | None
) -> int:
    """Submit the chunks after the recorded ones, recording each batch as soon as it exists; how many."""
    submitted = 0
    while (chunk := reader.take(state.chunk_size)) is not None:
        try:
            view = client.submit_batch(
                chunk.body,
                idempotency_key=KEY_PREFIX + chunk.digest,
                webhook=webhook,
                webhook_events=events.split(",") if events else None,
            )
        except ApiError as exc:
            raise ChunkRefused(chunk, exc) from exc
        batch_id = str(view["batchId"])
        state.batches.append(RecordedBatch(batch_id, chunk.first, len(chunk.lines), chunk.digest))
        state.save()
        submitted += 1
        print(f"batch {batch_id}: items {chunk.first}-{chunk.last} submitted", file=log, flush=True)
    return submitted


def item_errors(refused: ChunkRefused, body: Any, limit: int = 10) -> list[str]:
    """The invalid items of a refused chunk (a 422's itemErrors), by input line."""
    chunk = refused.chunk
    found = body.get("itemErrors") if isinstance(body, dict) else None
    out = []
    for problem in (found if isinstance(found, list) else [])[:limit]:
        index = problem.get("index") if isinstance(problem, dict) else None
        if not isinstance(index, int) or not 0 <= index < len(chunk.lines):
            continue
        custom = f" (customId {problem['customId']!r})" if problem.get("customId") else ""
        out.append(f"  line {chunk.line_numbers[index]}{custom}: {problem.get('code')}: {problem.get('message')}")
    return out


def counts_of(views: list[dict[str, Any]]) -> dict[str, int]:
    totals = dict.fromkeys(("total", "queued", "running", "succeeded", "failed", "canceled", "expired"), 0)
    for view in views:
        for name, value in view.get("requestCounts", {}).items():
            if isinstance(value, int):
                totals[name] = totals.get(name, 0) + value
    return totals


def finished(counts: dict[str, int]) -> int:
    return counts["total"] - counts["queued"] - counts["running"]


def watch(client: Server402, batch_ids: list[str], *, progress: TextIO) -> list[dict[str, Any]]:
    """Follow the batches until all have finished, with a progress bar of finished items; their last views.
    Waits on the oldest unfinished batch (a long poll of at most POLL_S), then reads the others."""
    from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no type information

    views = {batch_id: client.batch(batch_id) for batch_id in batch_ids}
    counts = counts_of(list(views.values()))
    with tqdm(total=counts["total"], unit="item", file=progress, disable=None) as bar:
        bar.update(finished(counts))
        while pending := [b for b in batch_ids if views[b].get("status") not in FINISHED_BATCH]:
            views[pending[0]] = client.batch(pending[0], wait=POLL_S)
            for batch_id in pending[1:]:
                views[batch_id] = client.batch(batch_id)
            now = finished(counts_of(list(views.values())))
            bar.update(now - bar.n)
    return [views[batch_id] for batch_id in batch_ids]


def summary(counts: dict[str, int], batches: int) -> str:
    return (
        f"{counts['total']} items in {batches} batch{'es' if batches != 1 else ''}: {counts['succeeded']} succeeded, "
        f"{counts['failed']} failed, {counts['canceled']} canceled, {counts['expired']} expired"
    )
