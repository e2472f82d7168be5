"""Time in the demo history: a clock the story sets to moments in the past, and a timeline.

The governance use cases take the time from the Clock port. The demo history passes this clock
to `build_governance`, so every event of the story lands in the past at the moment the story
names, in the order the story tells it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

TICK = timedelta(seconds=1)


class StoryClock:
    """A Clock that reads the moment the story set last, then moves on a second per reading.

    One action reads the clock several times (a vote, the decision it completes, the execution),
    so its events follow each other a second apart. The clock never goes back: a moment earlier
    than the next second is taken as the next second, so the chain's timestamps stay in seq
    order. `clamped` counts the moments earlier than a reading already made (a story resumed
    after other activity, or a story whose steps are out of order).
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the story clock needs a timezone-aware start")
        self._next = start.astimezone(UTC)
        self._last: datetime | None = None
        self.clamped = 0

    def at(self, moment: datetime) -> None:
        """Move to `moment`, unless the clock is already past it."""
        if moment >= self._next:
            self._next = moment.astimezone(UTC)
        elif self._last is not None and moment < self._last:
            self.clamped += 1

    def now(self) -> datetime:
        self._last = self._next
        self._next = self._last + TICK
        return self._last


@dataclass(frozen=True)
class Timeline:
    """Moments of the story, counted back from its end (the time the story is written)."""

    end: datetime

    def on(self, days_ago: int, hhmm: str) -> datetime:
        """`hhmm` UTC on the calendar day `days_ago` days before the end's day."""
        hour, minute = (int(part) for part in hhmm.split(":"))
        day = self.end.astimezone(UTC).date() - timedelta(days=days_ago)
        return datetime.combine(day, time(hour, minute), tzinfo=UTC)

    def ago(self, hours: float) -> datetime:
        return self.end - timedelta(hours=hours)


Moment = Callable[[Timeline], datetime]


def on(days_ago: int, hhmm: str) -> Moment:
    """A step's moment: a time of day, `days_ago` calendar days before the story's end."""
    return lambda timeline: timeline.on(days_ago, hhmm)


def ago(hours: float) -> Moment:
    """A step's moment: `hours` before the story's end."""
    return lambda timeline: timeline.ago(hours)
