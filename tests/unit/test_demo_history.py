"""The demo history's clock and the shape of its story (the story itself runs in
tests/integration/test_demo_history.py on the real demo store)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from app.demo_history import DAILY_MONITORING, DEMO_STORY
from app.demo_history.clock import StoryClock, Timeline, ago, on
from app.demo_users import DEMO_USERS
from app.mlflow_gateway._demo_batches import BATCH_DAYS, production_batch, shifted_share
from app.mlflow_gateway._demo_data import MODELS, tumor_data
from app.mlflow_gateway.demo_batches import batch_path

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


# --- the daily monitoring job -----------------------------------------------------------------


@pytest.mark.parametrize("end", ["00:05", "12:00", "23:59"])
def test_the_monitoring_job_runs_every_evening_between_the_first_and_the_last_step(
    end: str,
) -> None:
    hour, minute = (int(p) for p in end.split(":"))
    timeline = Timeline(T.replace(hour=hour, minute=minute))
    runs = [job.when(timeline) for job in DAILY_MONITORING]
    assert runs == sorted(runs)
    gaps = {later - earlier for earlier, later in itertools.pairwise(runs)}
    assert gaps == {timedelta(days=1)}
    steps = [step.when(timeline) for step in DEMO_STORY]
    assert steps[0] < runs[0]
    assert runs[-1] < steps[-1] < timeline.end
    assert not set(runs) & set(steps)


def test_each_evening_scores_the_versions_in_production_or_in_shadow_that_day() -> None:
    # champion v1 until the break-glass 13 days before the end, then v2; challenger v3 from
    # 2 days before; Production v1 until frank's signature 16 days before, then v2; Staging v3
    # from 3 days before (see steps.py)
    expected = {
        "tumor-classifier": {"1": range(19, 13, -1), "2": range(13, 0, -1), "3": range(2, 0, -1)},
        "diabetes-progression": {"1": range(19, 16, -1), "2": range(16, 0, -1), "3": (3, 2, 1)},
    }
    timeline = Timeline(T)
    for job in DAILY_MONITORING:
        day = (T.date() - job.when(timeline).date()).days
        held = {(m, v) for m, versions in expected.items() for v, days in versions.items()
                if day in days}  # fmt: skip
        assert {(m, v) for m, v, _ in job.batches} == held, job.title
        assert all(path.startswith("monitoring/batch-") for _, _, path in job.batches)


def test_every_version_the_story_scores_holds_its_batches_in_the_demo_store() -> None:
    for job in DAILY_MONITORING:
        for model, version, path in job.batches:
            spec = next(s for s in MODELS if s.name == model)
            assert path in {batch_path(n) for n in spec.batches[int(version)]}


def test_a_production_batch_is_the_same_every_time_and_drifts_more_as_the_days_pass() -> None:
    data = tumor_data()
    first, again = (production_batch("tumor-classifier", data, 7) for _ in range(2))
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == list(data.reference.columns)
    assert 160 <= len(first) < 220
    shares = [shifted_share("tumor-classifier", n) for n in range(1, BATCH_DAYS + 1)]
    assert shares == sorted(shares)
    assert (shares[0], shares[-1]) == (0.0, 1.0)
    # the new scanner reads sizes larger: the last batch's mean radius is well above the first's
    last = production_batch("tumor-classifier", data, BATCH_DAYS)
    assert last["mean_radius"].mean() > first["mean_radius"].mean() * 1.05
    with pytest.raises(ValueError, match="no demo batch"):
        production_batch("tumor-classifier", data, BATCH_DAYS + 1)
