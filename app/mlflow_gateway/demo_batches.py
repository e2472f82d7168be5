"""The demo store's production batches, kept as artifacts of each version's run.

`seed_demo` logs a version's daily batches (`_demo_batches`) as `monitoring/batch-NN.parquet`
when it trains the version, and adds the missing ones to a run seeded before batches existed
(the model is trained again with the same seed, so its predictions are the logged model's).
The demo history (`app.demo_history`) scores them as `runs:/RUN_ID/monitoring/batch-NN.parquet`:
a source the Monitoring page reads again, checked by its SHA-256, for a batch's Evidently report.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from app.errors import NotFound
from app.mlflow_gateway._demo_batches import (
    BATCH_DAYS,
    BATCH_FOLDER,
    LABEL,
    PREDICTION,
    batch_path,
    days_ago,
    production_batch,
    with_prediction,
)
from app.mlflow_gateway._demo_data import (
    MODELS,
    DemoData,
    ModelSpec,
    VersionSpec,
    diabetes_data,
    train_classifier,
    train_regressor,
    tumor_data,
)
from app.mlflow_gateway._support import apply_fast_fail_env, mlflow_errors
from app.settings import Settings

# What the demo history needs to schedule and score the batches (MODELS[i].batches: which
# version's run holds which batch).
__all__ = [
    "BATCH_DAYS",
    "LABEL",
    "MODELS",
    "PREDICTION",
    "backfill_batches",
    "batch_frames",
    "batch_path",
    "days_ago",
    "demo_batch_files",
    "log_batches",
]


def batch_frames(
    spec: ModelSpec, index: int, data: DemoData, model: Any
) -> dict[str, pd.DataFrame]:
    """Artifact path -> frame of every batch version `index` of the model holds."""
    return {
        batch_path(number): with_prediction(
            production_batch(spec.name, data, number), data, model, spec.task
        )
        for number in spec.batches.get(index, ())
    }


def log_batches(client: Any, run_id: str, frames: dict[str, pd.DataFrame]) -> None:
    """Log the frames as Parquet artifacts of the run, in one call."""
    if not frames:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for path, frame in frames.items():
            frame.to_parquet(Path(tmp) / Path(path).name, index=False)
        client.log_artifacts(run_id, tmp, BATCH_FOLDER)


def missing(client: Any, run_id: str, spec: ModelSpec, index: int) -> list[str]:
    """The batch paths version `index` should hold and its run does not."""
    wanted = [batch_path(n) for n in spec.batches.get(index, ())]
    if not wanted:
        return []
    present = {a.path for a in client.list_artifacts(run_id, BATCH_FOLDER)}
    return [path for path in wanted if path not in present]


def backfill_batches(
    client: Any,
    run_id: str,
    spec: ModelSpec,
    index: int,
    vspec: VersionSpec,
    data: DemoData,
    echo: Callable[[str], None],
) -> int:
    """Log the batches a run seeded before them lacks; returns how many were logged."""
    lacking = missing(client, run_id, spec, index)
    if not lacking:
        return 0
    trainer = train_classifier if spec.task == "binary-classification" else train_regressor
    model, _ = trainer(data, vspec.params)
    frames = batch_frames(spec, index, data, model)
    log_batches(client, run_id, {p: frames[p] for p in lacking})
    echo(f"logged {len(lacking)} monitoring batch(es) on run {run_id} of {spec.name}")
    return len(lacking)


def demo_batch_files(settings: Settings, model: str, version: str, into: Path) -> str:
    """Download the batches of a demo model version into `into`; returns its run's id.

    Logs the batches the run lacks first (a demo store seeded before they existed). One
    download for all of them: the demo history then scores each from its file, and records its
    source as `runs:/RUN_ID/monitoring/batch-NN.parquet` (what the Monitoring page reads again).

    Raises:
        NotFound: The version is not one `seed_demo` made.
        StoreUnavailable: MLflow cannot be reached.
    """
    from app.mlflow_gateway.demo_seed import DEMO_TAG

    apply_fast_fail_env()
    with mlflow_errors(settings.tracking_uri, f"model {model!r} version {version}"):
        from mlflow import MlflowClient

        client = MlflowClient(
            tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri
        )
        run_id = str(client.get_model_version(model, version).run_id)
        key = client.get_run(run_id).data.tags.get(DEMO_TAG, "")
        name, _, index = key.rpartition(":")
        spec = next((s for s in MODELS if s.name == name == model), None)
        if spec is None or not index.isdigit() or not 1 <= int(index) <= len(spec.versions):
            raise NotFound(f"{model} v{version} is not a version seed-demo trained")
        if not spec.batches.get(int(index)):
            raise NotFound(f"{model} v{version} holds no demo monitoring batch")
        if missing(client, run_id, spec, int(index)):
            data = tumor_data() if spec.name == MODELS[0].name else diabetes_data()
            vspec = spec.versions[int(index) - 1]
            backfill_batches(client, run_id, spec, int(index), vspec, data, lambda _: None)
        into.mkdir(parents=True, exist_ok=True)
        client.download_artifacts(run_id, BATCH_FOLDER, str(into))
    return run_id
