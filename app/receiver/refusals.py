"""Refused deliveries go to the audit chain at a bounded rate, so a flood cannot bloat it.

Per reason and per minute, a replica writes at most two entries: the first refusal at once
(with its delivery id and the sender's address), and when the minute is over, one summary with
how many more followed and up to five of their delivery ids. A flood of forged requests thus
costs the chain two entries per reason per minute per replica, while the first forgery is on
record within the worker's next pass. Counting happens in the request handler (a lock and a few
integers); the audit writes happen in the worker thread (`flush`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

WINDOW_S = 60.0
SAMPLES = 5


@dataclass
class _Window:
    started: float
    first: dict[str, Any] | None  # the first refusal, not yet written
    more: int = 0
    samples: list[str] = field(default_factory=list)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


class RefusalLog:
    """Counts refusals per reason; `flush` writes what is due through `record(reason, data)`."""

    def __init__(
        self,
        record: Callable[[str, Mapping[str, Any]], None],
        *,
        clock: Callable[[], float] = time.time,
        window_s: float = WINDOW_S,
        wake: threading.Event | None = None,
    ) -> None:
        self._record = record
        self._clock = clock
        self._window_s = window_s
        self._lock = threading.Lock()
        self._open: dict[str, _Window] = {}
        self._closed: list[tuple[str, _Window]] = []
        # Set when a first refusal waits to be written (the worker's wake-up event when shared).
        self.pending = wake or threading.Event()

    def note(self, reason: str, *, delivery_id: str = "", remote: str = "") -> None:
        """Count one refusal (called by the request handler; never touches the database)."""
        now = self._clock()
        with self._lock:
            window = self._open.get(reason)
            if window is not None and now - window.started >= self._window_s:
                self._closed.append((reason, self._open.pop(reason)))
                window = None
            if window is None:
                first = {"delivery_id": delivery_id[:64], "remote": remote[:64], "at": _iso(now)}
                self._open[reason] = _Window(started=now, first=first)
                self.pending.set()
                return
            window.more += 1
            if delivery_id and len(window.samples) < SAMPLES:
                window.samples.append(delivery_id[:64])

    def flush(self, *, final: bool = False) -> int:
        """Write the entries that are due; returns how many were written.

        Args:
            final: Also summarise the windows still open (the receiver is stopping).
        """
        now = self._clock()
        due: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            for reason, window in list(self._open.items()):
                if final or now - window.started >= self._window_s:
                    self._closed.append((reason, self._open.pop(reason)))
            for reason, window in [*self._closed, *self._open.items()]:
                if window.first is not None:
                    due.append((reason, {"count": 1, **window.first}))
                    window.first = None
            for reason, window in self._closed:
                if window.more:
                    summary = {
                        "count": window.more,
                        "window_start": _iso(window.started),
                        "window_end": _iso(min(now, window.started + self._window_s)),
                        "sample_delivery_ids": list(window.samples),
                    }
                    due.append((reason, summary))
            self._closed = []
        for reason, data in due:
            self._record(reason, data)
        return len(due)
