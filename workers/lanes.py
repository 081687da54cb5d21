"""The batch lane: batch items run in a worker process of their own, at a lower CPU priority, so a batch never
makes a single call wait: not on the queue (batch items are on `BATCH_QUEUE_NAME`, single calls on `QUEUE_NAME`),
not in a worker's event loop, and not for the CPU (the batch lane's process is `SERVER402_BATCH_NICE` nicer: the
kernel runs a single call's work first whenever both want a core, and a batch gets all that is left).

`python -m workers` runs the calls lane and keeps one batch-lane process beside it (`BatchLane`: started, restarted
when it ends, stopped with it; it ends by itself if this process dies, PR_SET_PDEATHSIG). `python -m workers --lane
calls` or `--lane batch` runs one lane only (to scale them apart). docs/architecture.md, "Workers and arq".
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from types import TracebackType

import structlog

RESTART_DELAY_S = 1.0
STOP_GRACE_S = 10.0
PARENT_ENV = "SERVER402_LANE_PARENT"  # the pid the batch lane ends with (set by BatchLane)
PR_SET_PDEATHSIG = 1

log = structlog.get_logger("workers.lanes")


class BatchLane:
    """A `python -m workers --lane batch` child process, restarted RESTART_DELAY_S after it ends, until `stop`."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="batch-lane", daemon=True)

    def __enter__(self) -> BatchLane:
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        # The child's parent-death signal follows this thread (the one that forks it): it lives as long as the lane.
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = subprocess.Popen([sys.executable, "-m", "workers", "--lane", "batch"], env=env)
            code = self._process.wait()
            if not self._stopping.wait(RESTART_DELAY_S):
                log.warning("batch lane ended: starting it again", exit_code=code)

    def stop(self) -> None:
        """Stop the child (SIGTERM: it finishes as a worker stopping does) and wait for it."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._thread.join(STOP_GRACE_S)


def become_batch_lane(niceness: int) -> None:
    """In the batch lane's process: lower its CPU priority, and end with the process that started it (if any)."""
    with contextlib.suppress(OSError):
        os.nice(niceness)
    parent = os.environ.get(PARENT_ENV)
    if parent is None or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if str(os.getppid()) != parent:  # it died before the signal was asked for
        os.kill(os.getpid(), signal.SIGTERM)
