"""The demo's governance history, written by `seed-demo` through the governance facade.

`seed_demo_governance` creates the demo users and writes `DEMO_STORY` (see `steps`) into a
governance database that has no requests of its own yet, with the daily monitoring job
(`DAILY_MONITORING`, see `monitoring`) running meanwhile. The story is a tuple of `StoryStep`s,
each idempotent: a later chapter is one more step, appended in time order, with its own `done`
check; something that happens every day is a job, run when the story's clock passes its moment.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime

from app.demo_history.monitoring import DAILY_MONITORING
from app.demo_history.steps import DEMO_STORY
from app.demo_history.story import Before, Ledger, Story, StoryError, StoryStep, seed_demo_history
from app.settings import Settings

__all__ = [
    "DAILY_MONITORING",
    "DEMO_STORY",
    "Before",
    "Ledger",
    "Story",
    "StoryError",
    "StoryStep",
    "seed_demo_governance",
    "seed_demo_history",
]


def seed_demo_governance(
    settings: Settings,
    *,
    now: datetime | None = None,
    echo: Callable[[str], None] = print,
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> bool:
    """`seed-demo`'s governance part: the demo users and the demo history, once.

    Returns:
        True when the governance database holds the whole story (written now or before).
    """
    return seed_demo_history(
        settings, DEMO_STORY, jobs=DAILY_MONITORING, now=now, echo=echo, warn=warn
    )
