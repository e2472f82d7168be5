"""The demo history's clock and the shape of its story (the story itself runs in
tests/integration/test_demo_history.py on the real demo store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.demo_history import DEMO_STORY
from app.demo_history.clock import StoryClock, Timeline, ago, on
from app.demo_users import DEMO_USERS
from app.mlflow_gateway._demo_data import MODELS

T = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_the_story_clock_reads_the_moment_set_then_moves_on_a_second_per_reading() -> None:
    clock = StoryClock(T)
    assert [clock.now(), clock.now()] == [T, T + timedelta(seconds=1)]
    clock.at(T + timedelta(days=1))
    assert clock.now() == T + timedelta(days=1)
    assert clock.clamped == 0


def test_the_story_clock_never_goes_back() -> None:
    clock = StoryClock(T)
    clock.now()
    clock.at(T)  # the moment of the last reading: nothing is out of order
    assert clock.clamped == 0
    clock.at(T - timedelta(days=3))  # a resumed story after newer entries
    assert clock.now() == T + timedelta(seconds=1)
    assert clock.clamped == 1


def test_the_story_clock_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        StoryClock(datetime(2026, 12, 3))


def test_timeline_moments_count_back_from_the_end() -> None:
    timeline = Timeline(T)
    assert on(2, "09:15")(timeline) == datetime(2026, 12, 1, 9, 15, tzinfo=UTC)
    assert ago(hours=3)(timeline) == T - timedelta(hours=3)


@pytest.mark.parametrize("end", ["00:05", "02:59", "12:00", "23:59"])
def test_the_steps_follow_each_other_at_any_time_of_day_and_end_in_the_past(end: str) -> None:
    hour, minute = (int(p) for p in end.split(":"))
    timeline = Timeline(T.replace(hour=hour, minute=minute))
    moments = [step.when(timeline) for step in DEMO_STORY]
    assert moments == sorted(moments)
    assert len(set(moments)) == len(moments)
    assert moments[-1] < timeline.end
    assert timeline.end - moments[0] <= timedelta(days=21)


def test_each_step_promotes_a_version_only_after_its_run_was_trained() -> None:
    timeline = Timeline(T)
    trained = {
        (spec.name, str(i)): T - timedelta(days=v.days_ago)
        for spec in MODELS
        for i, v in enumerate(spec.versions, start=1)
    }
    for step in DEMO_STORY:
        for (model, version, _target, _kind), _state in step.requests:
            assert step.when(timeline) > trained[(model, version)], step.title


def test_the_story_claims_each_request_once_and_ends_with_one_waiting() -> None:
    keys = [key for step in DEMO_STORY for key, _ in step.requests]
    assert len(keys) == len(set(keys))
    waiting = [key for step in DEMO_STORY for key, state in step.requests if state == "pending"]
    assert waiting == [("diabetes-progression", "3", "champion", "normal")]


def test_every_demo_account_says_what_it_will_find() -> None:
    assert all(account.finds for account in DEMO_USERS)
