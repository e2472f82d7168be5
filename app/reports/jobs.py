"""Long report builds in the background, so a page stays usable while Evidently works.

One small thread pool per process; jobs are keyed (by content hash), so asking twice for the
same report while it is being built joins the running job instead of starting another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JobState:
    status: str  # "running", "done" or "failed"
    path: Path | None = None
    error: str = ""


class ReportJobs:
    """Runs `build() -> Path` once per key on a background thread and reports its state."""

    def __init__(self, workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report")
        self._jobs: dict[str, Future[Path]] = {}
        self._lock = threading.Lock()

    def submit(self, key: str, build: Callable[[], Path]) -> None:
        with self._lock:
            job = self._jobs.get(key)
            if job is None or (job.done() and job.exception() is not None):
                self._jobs[key] = self._pool.submit(build)

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
