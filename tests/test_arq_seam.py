"""What server402 relies on of arq beyond its documented API (shared/arq_seam.py), checked against the arq that is
installed: an upgrade that removes or reshapes any of it fails here, by name, before any pipeline test does."""

from __future__ import annotations

import inspect
from pathlib import Path

import arq
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.worker import Worker, func

from shared import arq_seam
from workers.queue import ServerWorker

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_arq_is_the_pinned_one() -> None:
    pinned = next(line for line in (ROOT / "requirements.lock").read_text().splitlines() if line.startswith("arq=="))
    assert pinned == f"arq=={arq.VERSION}", "arq changed: re-check shared/arq_seam.py, then this pin"


async def test_every_worker_member_relied_on_is_there() -> None:
    async def noop(ctx: dict[str, object]) -> None: ...

    # in a running loop: arq takes it (outside one it would make a loop that nobody closes); no connection yet
    worker = Worker(functions=[func(noop, name="noop")], handle_signals=False)
    missing = [name for name in arq_seam.RELIED_ON if not hasattr(Worker, name) and not hasattr(worker, name)]
    assert not missing, f"arq's Worker no longer has {missing}: ServerWorker and the supervisor use them"


def test_the_overridden_methods_keep_their_signatures() -> None:
    for name in ("_poll_iteration", "finish_job", "run_job"):
        ours, arqs = inspect.signature(getattr(ServerWorker, name)), inspect.signature(getattr(Worker, name))
        assert list(ours.parameters) == list(arqs.parameters), f"arq's Worker.{name} changed: {arqs}"
        assert inspect.iscoroutinefunction(getattr(Worker, name)), name
    assert list(inspect.signature(Worker._release_sem_dec_counter_on_complete).parameters) == ["self"]
    assert list(inspect.signature(Worker.run_job).parameters) == ["self", "job_id", "score"]


def test_key_prefixes_are_arqs() -> None:
    assert (arq_seam.ARQ_JOB_PREFIX, arq_seam.ARQ_RETRY_PREFIX, arq_seam.ARQ_IN_PROGRESS_PREFIX) == (
        job_key_prefix, retry_key_prefix, in_progress_key_prefix,
    ) == ("arq:job:", "arq:retry:", "arq:in-progress:")  # fmt: skip


def test_no_other_module_reaches_into_arq() -> None:
    """arq's private names (a leading underscore) and its internal modules appear only in the seam, the worker
    that overrides them and this test."""
    allowed = {"shared/arq_seam.py", "workers/queue.py"}
    offenders = []
    for path in [*ROOT.glob("api/**/*.py"), *ROOT.glob("workers/**/*.py"), *ROOT.glob("shared/**/*.py")]:
        relative = str(path.relative_to(ROOT))
        text = path.read_text()
        if relative not in allowed and ("arq.constants" in text or "arq.jobs" in text or "._pool" in text):
            offenders.append(relative)
    assert not offenders, offenders
