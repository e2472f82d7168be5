"""Long report builds in the background, so a page stays usable while Evidently works.

One small thread pool per process; jobs are keyed (by content hash), so asking twice for the
same report while it is being built joins the running job instead of starting another.

The registry is bounded: a job waiting or running holds both data sets in memory, so at most
`max_jobs` may be unfinished at once (a further one is refused with a message naming
`COUNTERSIGN_REPORT_JOBS_MAX`), and only the `max_jobs` most recent finished jobs are remembered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from app.errors import LimitExceeded

DEFAULT_MAX_JOBS = 16


@dataclass(frozen=True)
class JobState:
    status: str  # "running", "done" or "failed"
    path: Path | None = None
    error: str = ""


class ReportJobs:
    """Runs `build() -> Path` once per key on a background thread and reports its state."""

    def __init__(self, workers: int = 1, max_jobs: int = DEFAULT_MAX_JOBS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report")
        self._jobs: dict[str, Future[Path]] = {}
        self._lock = threading.Lock()
        self.max_jobs = max_jobs

    def submit(self, key: str, build: Callable[[], Path]) -> None:
        """Start the job for `key`, or join the one already there.

        Raises:
            LimitExceeded: `max_jobs` reports are already waiting or being built.
        """
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not (job.done() and job.exception() is not None):
                return
            self._forget_finished()
            unfinished = sum(1 for j in self._jobs.values() if not j.done())
            if unfinished >= self.max_jobs:
                raise LimitExceeded(
                    f"{unfinished} reports are already being built; the limit is "
                    f"{self.max_jobs} at once (raise COUNTERSIGN_REPORT_JOBS_MAX, or try again "
                    "when one has finished)"
                )
            self._jobs.pop(key, None)
            self._jobs[key] = self._pool.submit(build)

    def _forget_finished(self) -> None:
        # Oldest first (dicts keep insertion order); a failed job's traceback holds its frames.
        finished = [k for k, j in self._jobs.items() if j.done()]
        for key in finished[: max(0, len(finished) - self.max_jobs + 1)]:
            del self._jobs[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def state(self, key: str) -> JobState | None:
        with self._lock:
            job = self._jobs.get(key)
        if job is None:
            return None
        if not job.done():
            return JobState("running")
        exc = job.exception()
        if exc is not None:
            return JobState("failed", error=str(exc) or type(exc).__name__)
        return JobState("done", job.result())

    def wait(self, key: str, timeout: float | None = None) -> JobState | None:
        """Block until the job ends (tests and the CLI); returns its final state."""
        with self._lock:
            job = self._jobs.get(key)
        if job is not None:
            job.exception(timeout=timeout)
        return self.state(key)
