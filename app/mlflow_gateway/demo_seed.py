"""The demo MLflow store: real scikit-learn models trained on bundled data sets.

Two registered models, three versions each, by three authors (alice, bob, carol):

- `tumor-classifier` (breast cancer data; experiment `tumor-classification`), aliases
  `champion` -> v2 and `challenger` -> v3;
- `diabetes-progression` (diabetes data; experiment `diabetes-progression`), legacy stages
  v1 Archived, v2 Production, v3 Staging.

Every run logs hyperparameters, final metrics, per-iteration metric histories (step = boosting
iteration), tags, a description, its training and evaluation data with `mlflow.log_input`, and
Parquet artifacts `data/reference.parquet`, `data/evaluation.parquet` and `data/current.parquet`
(a drifted production-like batch; see `_demo_data`), the daily production batches the demo
history scores for the version (`monitoring/batch-NN.parquet`, see `demo_batches`), and
`feature_importance.json`:
{"model": str, "method": "impurity", "features": [{"feature": str, "importance": float}, ...]}
sorted by importance, descending. Countersign never loads a model to compute importance by
default, so every demo version logs it; a store seeded before that gains it (and the batches)
on the next seed.

Idempotent: each run carries the tag `countersign.demo`; a finished run is never made again.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.mlflow_gateway._demo_data import (
    MODELS,
    DemoData,
    ModelSpec,
    VersionSpec,
    diabetes_data,
    encode,
    train_classifier,
    train_regressor,
)
from app.mlflow_gateway._support import apply_fast_fail_env, mlflow_errors
from app.mlflow_gateway.demo_batches import backfill_batches, batch_frames, log_batches
from app.settings import Settings

DEMO_TAG = "countersign.demo"
IMPORTANCE_FILE = "feature_importance.json"
DAY_MS = 86_400_000
__all__ = ["MODELS", "demo_store_exists", "seed_demo"]


@contextmanager
def _global_uris(settings: Settings) -> Iterator[None]:
    """Point MLflow's fluent API (needed by log_model/log_input) at our store, then restore.

    `mlflow.set_tracking_uri` also writes MLFLOW_TRACKING_URI into os.environ; we put the
    environment back too, so nothing leaks into the rest of the process.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as reg_utils
    from mlflow.tracking._tracking_service import utils as track_utils

    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved = (track_utils._tracking_uri, reg_utils._registry_uri)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        reg_utils._registry_uri = saved[1]
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def demo_store_exists(settings: Settings) -> bool:
    """True when the default demo store file is there (the cheap check of `--if-missing`)."""
    if settings.tracking_uri.startswith("sqlite:///"):
        return Path(settings.tracking_uri[len("sqlite:///") :]).is_file()
    return False


def _refuse_another_schema(settings: Settings) -> None:
    """Seeding writes through MLflow's client, which would migrate an existing store at another
    schema revision: refuse that store with its message (a new store is created as usual)."""
    from app.mlflow_gateway._store_check import require_expected_schema

    require_expected_schema(settings.tracking_uri, "MLFLOW_TRACKING_URI", allow_new=True)
    require_expected_schema(settings.registry_uri, "MLFLOW_REGISTRY_URI", allow_new=True)


def seed_demo(settings: Settings, echo: Callable[[str], None] = print) -> int:
    """Create whatever part of the demo store is missing and print what was made.

    Returns:
        The number of things created or changed (0 when the store was already complete).
    """
    apply_fast_fail_env()
    _refuse_another_schema(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    with mlflow_errors(settings.tracking_uri), _global_uris(settings), warnings.catch_warnings():
        # MLflow's hints about integer columns and dataset sources are noise for a demo.
        warnings.simplefilter("ignore", UserWarning)
        from mlflow import MlflowClient

        client = MlflowClient(
            tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri
        )
        from app.mlflow_gateway._demo_data import tumor_data

        made = 0
        for spec, data in ((MODELS[0], tumor_data()), (MODELS[1], diabetes_data())):
            made += _seed_model(client, settings, spec, data, echo)
    if made == 0:
        echo(f"demo store at {settings.tracking_uri} is already complete: nothing changed")
    else:
        echo(f"demo store at {settings.tracking_uri}: {made} item(s) created or updated")
    return made


def _experiment(
    client: Any, settings: Settings, spec: ModelSpec, echo: Callable[[str], None]
) -> tuple[str, int]:
    exp = client.get_experiment_by_name(spec.experiment)
    if exp is not None:
        return exp.experiment_id, 0
    location = settings.artifacts_dir / spec.experiment
    exp_id = client.create_experiment(
        spec.experiment,
        artifact_location=location.as_uri(),
        tags={"mlflow.note.content": spec.description, "task": spec.task},
    )
    echo(f"created experiment {spec.experiment} (artifacts in {location})")
    return exp_id, 1


def _seed_model(
    client: Any, settings: Settings, spec: ModelSpec, data: DemoData, echo: Callable[[str], None]
) -> int:
    exp_id, made = _experiment(client, settings, spec, echo)
    if not client.search_registered_models(filter_string=f"name = '{spec.name}'"):
        client.create_registered_model(
            spec.name,
            tags={"task": spec.task, "owner_team": "applied-ml"},
            description=spec.description,
        )
        echo(f"registered model {spec.name}")
        made += 1
    versions: dict[int, str] = {}
    for index, vspec in enumerate(spec.versions, start=1):
        key = f"{spec.name}:{index}"
        found = client.search_runs([exp_id], filter_string=f"tags.`{DEMO_TAG}` = '{key}'")
        done = [r for r in found if r.info.status == "FINISHED"]
        for stale in (r for r in found if r.info.status != "FINISHED"):
            client.delete_run(stale.info.run_id)  # an interrupted earlier seed
        if done:
            mvs = client.search_model_versions(f"run_id = '{done[0].info.run_id}'")
            versions[index] = str(mvs[0].version)
            run_id = done[0].info.run_id
            made += _backfill_importance(client, run_id, spec, vspec, data, echo)
            made += backfill_batches(client, run_id, spec, index, vspec, data, echo)
            continue
        versions[index] = _train_and_log(client, exp_id, spec, index, vspec, data, key)
        echo(f"trained {spec.name} v{versions[index]} by {vspec.author}: {vspec.params}")
        made += 1
    rm = client.get_registered_model(spec.name)
    for alias, index in spec.aliases.items():
        if str((rm.aliases or {}).get(alias)) != versions[index]:
            client.set_registered_model_alias(spec.name, alias, versions[index])
            echo(f"alias {spec.name}@{alias} -> v{versions[index]}")
            made += 1
    for index, stage in spec.stages.items():
        mv = client.get_model_version(spec.name, versions[index])
        if mv.current_stage != stage:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                client.transition_model_version_stage(spec.name, versions[index], stage)
            echo(f"stage {spec.name} v{versions[index]} -> {stage}")
            made += 1
    return made


def _importance_doc(spec: ModelSpec, data: DemoData, model: Any) -> dict[str, Any]:
    ranked = sorted(
        zip(data.features, model.feature_importances_, strict=True), key=lambda p: -p[1]
    )
    return {
        "model": spec.name,
        "method": "impurity",
        "features": [{"feature": f, "importance": float(v)} for f, v in ranked],
    }


def _backfill_importance(
    client: Any,
    run_id: str,
    spec: ModelSpec,
    vspec: VersionSpec,
    data: DemoData,
    echo: Callable[[str], None],
) -> int:
    """Log the importance of a version seeded before every version logged it (same seed, so
    the retrained model is the logged one)."""
    if IMPORTANCE_FILE in {a.path for a in client.list_artifacts(run_id)}:
        return 0
    trainer = train_classifier if spec.task == "binary-classification" else train_regressor
    model, _ = trainer(data, vspec.params)
    client.log_dict(run_id, _importance_doc(spec, data, model), IMPORTANCE_FILE)
    echo(f"logged {IMPORTANCE_FILE} on run {run_id} of {spec.name}")
    return 1


def _train_and_log(
    client: Any,
    exp_id: str,
    spec: ModelSpec,
    index: int,
    vspec: VersionSpec,
    data: DemoData,
    key: str,
) -> str:
    import time

    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.models import infer_signature

    trainer = train_classifier if spec.task == "binary-classification" else train_regressor
    model, result = trainer(data, vspec.params)
    start = int(time.time() * 1000) - vspec.days_ago * DAY_MS
    run = client.create_run(
        exp_id,
        start_time=start,
        run_name=f"{spec.name}-v{index}-{vspec.author}",
        tags={
            "mlflow.user": vspec.author,
            DEMO_TAG: key,
            "mlflow.note.content": vspec.description,
            "model_family": "gradient_boosting",
            "dataset": spec.experiment,
        },
    )
    run_id = run.info.run_id
    params = {**vspec.params, "train_rows": len(data.reference), "n_features": len(data.features)}
    steps = len(next(iter(result["history"].values())))
    # One step every 40 ms of wall time, so "by wall time" charts have a real time axis.
    metrics = [
        Metric(name, float(value), start + 40 * step, step)
        for name, values in result["history"].items()
        for step, value in enumerate(values)
    ]
    end = start + 40 * steps + 1000
    metrics += [Metric(k, float(v), end, steps) for k, v in result["final"].items()]
    for i in range(0, len(metrics), 900):  # MLflow caps a batch at 1000 metrics
        client.log_batch(run_id, metrics=metrics[i : i + 900])
    client.log_batch(
        run_id,
        params=[Param(k, str(v)) for k, v in params.items()],
        tags=[RunTag("framework", "scikit-learn")],
    )
    x_eval = encode(data.evaluation, data.features)
    frames = {
        "reference": data.reference,
        "evaluation": data.evaluation.assign(prediction=model.predict(x_eval)),
        "current": data.current.assign(
            prediction=model.predict(encode(data.current, data.features))
        ),
    }
    with mlflow.start_run(run_id=run_id), tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        for name, frame in frames.items():
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        mlflow.log_artifacts(str(folder), "data")
        artifact_root = mlflow.get_artifact_uri("data")
        for name, context in (("reference", "training"), ("evaluation", "evaluation")):
            dataset = mlflow.data.from_pandas(
                frames[name],
                source=f"{artifact_root}/{name}.parquet",
                name=f"{spec.experiment}-{name}",
                targets="target",
            )
            mlflow.log_input(dataset, context=context)
        mlflow.log_dict(_importance_doc(spec, data, model), IMPORTANCE_FILE)
        log_batches(client, run_id, batch_frames(spec, index, data, model))
        x_ref = encode(data.reference, data.features)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="cloudpickle",
            signature=infer_signature(x_ref, model.predict(x_ref)),
            # Explicit requirements: inferring them starts a subprocess per model (slow).
            pip_requirements=["scikit-learn", "cloudpickle", "pandas"],
        )
    mv = client.create_model_version(
        spec.name,
        source=info.model_uri,
        run_id=run_id,
        model_id=info.model_id,
        description=vspec.description,
        tags={"author": vspec.author, **vspec.tags},
    )
    # Finished last: a run that is FINISHED is complete, which is what idempotency checks.
    client.set_terminated(run_id, "FINISHED", end_time=end)
    return str(mv.version)
