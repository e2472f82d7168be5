"""The demo's daily monitoring job: every evening the day's production batches are scored.

As a scheduler running `monitor run` would, at 20:00 UTC each day of the story the job scores
that day's batch of each version in production or in shadow: the holder of
tumor-classifier@champion and of diabetes-progression's Production stage on that day, and the
challenger and the Staging version once they hold those targets (`ModelSpec.batches` in the
demo store says which version's run holds which batch). Each batch is read from its run as
`runs:/RUN_ID/monitoring/batch-NN.parquet`, so the Monitoring page can read it again for its
Evidently report, and scored with its label and prediction under the policy in force.

Under the shipped policy (the `"*"` monitoring block: drift share at most 0.5, three batches in
a row) the tumour batches, whose share from the referral clinic's new scanner grows every day,
open one drift alert on the champion in the last week; the challenger has too few batches yet,
and the diabetes batches stay near a third of their columns.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from app.demo_history.clock import on
from app.demo_history.ledger import BatchKey
from app.demo_history.story import Story, StoryStep
from app.mlflow_gateway.demo_batches import (
    BATCH_DAYS,
    LABEL,
    MODELS,
    PREDICTION,
    batch_path,
    days_ago,
)
from governance.domain import SCHEDULER

SCORED_AT = "20:00"


def scored_on(number: int) -> tuple[BatchKey, ...]:
    """The (model, version, artifact path) of every batch the job scores on day `number`."""
    return tuple(
        (spec.name, str(index), batch_path(number))
        for spec in MODELS
        for index, numbers in sorted(spec.batches.items())
        if number in numbers
    )


def score_batch(story: Story, model: str, version: str, number: int) -> None:
    """Score batch `number` of the version as the scheduler, as of its day (idempotent)."""
    from app.bootstrap import data_limits
    from app.reports.uploads import read_path

    run_id, folder = _batch_files(story, model, version)
    path = batch_path(number)
    frame = read_path(folder / PurePosixPath(path), data_limits(story.settings, upload=False))
    story.monitoring().run_frame(
        SCHEDULER,
        model,
        version,
        frame,
        as_of=story.timeline.on(days_ago(number), "00:00"),
        source=f"runs:/{run_id}/{path}",
        label=LABEL,
        prediction=PREDICTION,
    )


def _batch_files(story: Story, model: str, version: str) -> tuple[str, Path]:
    """The version's run and a folder holding its batches, downloaded once per story."""
    key = ("demo-batches", model, version)
    if key not in story.memo:
        from app.mlflow_gateway.demo_batches import demo_batch_files

        # Kept with the story (removed when the story is gone): read once per batch.
        folder = tempfile.TemporaryDirectory(prefix="countersign-demo-batches-")
        run_id = demo_batch_files(story.settings, model, version, Path(folder.name))
        story.memo[key] = (run_id, folder)
    run_id, folder = story.memo[key]
    return run_id, Path(folder.name)


def _job(number: int) -> StoryStep:
    scored = scored_on(number)

    def run(story: Story) -> None:
        for model, version, _path in scored:
            score_batch(story, model, version, number)

    names = ", ".join(f"{model} v{version}" for model, version, _ in scored)
    return StoryStep(
        f"monitoring job, day {number} of {BATCH_DAYS}: batches of {names} scored",
        on(days_ago(number), SCORED_AT),
        run,
        batches=scored,
    )


DAILY_MONITORING: tuple[StoryStep, ...] = tuple(_job(n) for n in range(1, BATCH_DAYS + 1))
