"""The demo's governance history, written by `seed-demo` through the governance facade.

`seed_demo_governance` creates the demo users and writes `DEMO_STORY` (see `steps`) into a
governance database that has no requests of its own yet. The story is a tuple of `StoryStep`s,
each idempotent: a later chapter (an out-of-band move put back, a monitoring alert) is one more
step, appended in time order, with its own `done` check.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime

from app.demo_history.steps import DEMO_STORY
from app.demo_history.story import Before, Ledger, Story, StoryError, StoryStep, seed_demo_history
from app.settings import Settings

__all__ = [
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
    return seed_demo_history(settings, DEMO_STORY, now=now, echo=echo, warn=warn)
