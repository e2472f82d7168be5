"""MLflow stores shaped like the ones teams really have, built with MLflow's own client.

`build_shapes(uri, root)` writes, into any store MLflow can write (SQLite, PostgreSQL, a real
`mlflow server`, a `file:` store):

- experiment `byo-shapes`: a parent run with two nested child runs, runs RUNNING, FAILED, KILLED
  and one deleted, a NaN metric, parameter values that are a long list, `None`, an empty string
  and unicode, and a run whose data set input lost its data set record (SQL and file stores);
- `byo-sixty`: 60 versions (descriptions left null), three of them in the legacy stage
  Production at once, one in Staging, `champion` on v60;
- `byo-single`: one version holding `champion` (from the run whose data set record is gone);
- `byo-shared-run`: two versions registered from one run (two LoggedModels, different metrics);
- `byo-logged`: v1 from a LoggedModel logged outside any run (its metrics logged with
  `model_id` and a data set, which MLflow records from an evaluation run), v2 from a
  LoggedModel made with `mlflow.initialize_logged_model` inside a run with a training data set.

`build_file_store(root)` makes a `file:` store the same way and adds what only a hand-written
folder has: an experiment folder without meta.yaml. `build_old_schema_store(path)` creates an
SQLite store at MLflow schema revision `bd07f7e963c5` (2022) with MLflow's own migrations and
fills it with rows, as an MLflow of that time would have.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OLD_REVISION = "bd07f7e963c5"
EXPERIMENT = "byo-shapes"
SIXTY, SINGLE, SHARED, LOGGED = "byo-sixty", "byo-single", "byo-shared-run", "byo-logged"
PRODUCTION_HOLDERS = ("12", "31", "58")
LONG_LIST = str(list(range(900)))  # about 4,400 characters
ODD_PARAMS = {
    "long_list": LONG_LIST,
    "none": None,
    "empty": "",
    "unicode": "température ✓ 日本語 🚀",
}
NO_META_FOLDER = "424242"


@dataclass
class Shapes:
    """What a built store holds, for the tests to assert on."""

    uri: str
    experiment_id: str = ""
    runs: dict[str, str] = field(default_factory=dict)  # name -> run id
    logged_models: dict[str, str] = field(default_factory=dict)  # label -> model id
    orphan_input: bool = False  # the data set record of `orphan-input`'s input was removed


@contextmanager
def fluent(uri: str) -> Iterator[Any]:
    """Point MLflow's fluent API at `uri` for the block (log_model needs it), then restore."""
    import mlflow
    from mlflow.tracking import fluent as fluent_state
    from mlflow.tracking._model_registry import utils as reg_utils
    from mlflow.tracking._tracking_service import utils as track_utils

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")
    saved_env = {k: os.environ.get(k) for k in names}
    saved = (track_utils._tracking_uri, reg_utils._registry_uri)
    saved_experiment = fluent_state._active_experiment_id
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield mlflow
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        fluent_state._active_experiment_id = saved_experiment
        track_utils._tracking_uri, reg_utils._registry_uri = saved
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _identity_model() -> Any:
    import mlflow.pyfunc

    class Identity(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return model_input

    return Identity()


def _log_model(mlflow: Any, name: str) -> Any:
    # pip_requirements=[]: inferring requirements would run pip for seconds per model.
    return mlflow.pyfunc.log_model(name=name, python_model=_identity_model(), pip_requirements=[])


def _dataset(name: str, source: str) -> Any:
    import mlflow.data
    import pandas as pd

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.0, 1.0, 0.0]})
    return mlflow.data.from_pandas(frame, name=name, source=source)


def build_shapes(uri: str, artifact_root: Path | None) -> Shapes:
    """Write every shape into the store at `uri`; `artifact_root` None lets a server choose."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    shapes = Shapes(uri)
    location = artifact_root.as_uri() if artifact_root is not None else None
    exp = client.create_experiment(EXPERIMENT, artifact_location=location, tags={"team": "byo"})
    shapes.experiment_id = exp

    def run(name: str, status: str | None = "FINISHED", **tags: str) -> str:
        created = client.create_run(exp, run_name=name, tags={"mlflow.user": "dana", **tags})
        run_id = created.info.run_id
        client.log_metric(run_id, "rmse", 1.0 + len(shapes.runs) / 10)
        if status is not None:
            client.set_terminated(run_id, status=status)
        shapes.runs[name] = run_id
        return run_id

    parent = run("sweep")
    run("trial-1", **{"mlflow.parentRunId": parent})
    run("trial-2", "FAILED", **{"mlflow.parentRunId": parent})
    run("still-running", None)
    run("killed", "KILLED")
    client.delete_run(run("deleted"))
    odd = run("odd-params")
    for key, value in ODD_PARAMS.items():
        client.log_param(odd, key, value)
    client.log_metric(odd, "loss", float("nan"))

    with fluent(uri) as mlflow:
        orphan = run("orphan-input")
        train = _dataset("orphan-train", "s3://byo/train.parquet")
        client.log_inputs(orphan, datasets=[_input(train, "training")])
        shapes.orphan_input = _drop_dataset_record(uri, train.digest)
        _registry(client, mlflow, shapes, exp)
    return shapes


def _input(dataset: Any, context: str) -> Any:
    from mlflow.entities import DatasetInput, InputTag

    return DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", context)])


MLMODEL = (
    "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"
)


def _model_files(client: Any, run_ids: list[str]) -> None:
    """An MLmodel file under `model/` of each run: the versions registered from `runs:/ID/model`
    have model files to read (stores whose artifacts are gone are another fixture's subject)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "MLmodel"
        path.write_text(MLMODEL, encoding="utf-8")
        for run_id in run_ids:
            client.log_artifact(run_id, str(path), "model")


def _registry(client: Any, mlflow: Any, shapes: Shapes, exp: str) -> None:
    source_runs = [shapes.runs[n] for n in ("sweep", "trial-1", "killed")]
    _model_files(client, [*source_runs, shapes.runs["orphan-input"]])
    client.create_registered_model(SIXTY, tags={"owner": "byo"})  # no description: null
    for i in range(60):
        run_id = source_runs[i % len(source_runs)]
        client.create_model_version(SIXTY, f"runs:/{run_id}/model", run_id=run_id)
    with _quiet():
        for number in PRODUCTION_HOLDERS:
            client.transition_model_version_stage(SIXTY, number, "Production", False)
        client.transition_model_version_stage(SIXTY, "59", "Staging", False)
        client.transition_model_version_stage(SIXTY, "3", "Archived", False)
    client.set_registered_model_alias(SIXTY, "champion", "60")

    client.create_registered_model(SINGLE)  # its only version's run lost a data set record
    orphan = shapes.runs["orphan-input"]
    client.create_model_version(SINGLE, f"runs:/{orphan}/model", orphan)
    client.set_registered_model_alias(SINGLE, "champion", "1")

    mlflow.set_experiment(experiment_id=exp)
    evaluation = _dataset("eval-set", "s3://byo/eval.parquet")
    # A LoggedModel logged outside any run; its metrics name it by model_id and a data set
    # (MLflow records them from an evaluation run it starts for the call).
    outside = _log_model(mlflow, "outside-run")
    mlflow.log_metrics(
        {"accuracy": 0.91, "f1": 0.88}, model_id=outside.model_id, dataset=evaluation
    )
    mlflow.end_run()
    mlflow.log_model_params({"learning_rate": "0.05", "layers": "3"}, model_id=outside.model_id)
    shapes.logged_models["outside-run"] = outside.model_id
    with mlflow.start_run(run_name="with-logged-model") as active:
        shapes.runs["with-logged-model"] = active.info.run_id
        mlflow.log_input(_dataset("train-set", "s3://byo/train.parquet"), context="training")
        mlflow.log_params({"learning_rate": "0.1", "layers": "2"})
        initialised = mlflow.initialize_logged_model(
            name="in-run", params={"learning_rate": "0.1"}, model_type="classifier"
        )
        inside = mlflow.pyfunc.log_model(
            python_model=_identity_model(), pip_requirements=[], model_id=initialised.model_id
        )
        mlflow.log_metrics(
            {"accuracy": 0.87, "f1": 0.85}, model_id=inside.model_id, dataset=evaluation
        )
        shapes.logged_models["in-run"] = inside.model_id
        first = _log_model(mlflow, "shared-a")
        mlflow.log_metrics({"accuracy": 0.80}, model_id=first.model_id)
        second = _log_model(mlflow, "shared-b")
        mlflow.log_metrics({"accuracy": 0.83}, model_id=second.model_id)
        shapes.runs["shared"] = active.info.run_id
    with _quiet():
        for info in (outside, inside):
            mlflow.register_model(info.model_uri, LOGGED)
        for info in (first, second):
            mlflow.register_model(info.model_uri, SHARED)
    client.set_registered_model_alias(LOGGED, "champion", "1")


@contextmanager
def _quiet() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _drop_dataset_record(uri: str, digest: str) -> bool:
    """Remove the data set record behind an input, as a hand-cleaned store has it."""
    if uri.startswith(("sqlite:", "postgresql")):
        import sqlalchemy

        engine = sqlalchemy.create_engine(uri)
        try:
            with engine.begin() as conn:
                conn.execute(
                    sqlalchemy.text("DELETE FROM datasets WHERE digest = :d"), {"d": digest}
                )
        finally:
            engine.dispose()
        return True
    if uri.startswith("file:"):
        from urllib.parse import urlparse

        root = Path(urlparse(uri).path)
        for meta in root.glob("*/datasets/*/meta.yaml"):
            if digest in meta.read_text(encoding="utf-8"):
                shutil.rmtree(meta.parent)
                return True
    return False  # a server's database is not ours to edit


def build_file_store(root: Path) -> Shapes:
    """A `file:` store with every shape, plus an experiment folder lacking meta.yaml."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    store = root / "mlruns"
    shapes = build_shapes(store.as_uri(), root / "artifacts")
    (store / NO_META_FOLDER / uuid.uuid4().hex).mkdir(parents=True)
    return shapes


def build_old_schema_store(uri: str) -> dict[str, str]:
    """A store at MLflow schema revision `bd07f7e963c5` (2022), made by MLflow's own migrations
    up to that revision, with rows as an MLflow of that time wrote them. Returns run ids by name.
    """
    import sqlalchemy
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    engine = sqlalchemy.create_engine(uri)
    try:
        InitialBase.metadata.create_all(engine)
        config = _get_alembic_config(uri)
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, OLD_REVISION)
        with engine.begin() as conn:
            return _old_rows(conn)
    finally:
        engine.dispose()


def _old_rows(conn: Any) -> dict[str, str]:
    import sqlalchemy

    def insert(table: str, **row: Any) -> None:
        names = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        conn.execute(sqlalchemy.text(f"INSERT INTO {table} ({names}) VALUES ({marks})"), row)

    insert("experiments", experiment_id=0, name="Default", artifact_location="/tmp/a/0",
           lifecycle_stage="active")  # fmt: skip
    insert("experiments", experiment_id=1, name="legacy-exp", artifact_location="/tmp/a/1",
           lifecycle_stage="active")  # fmt: skip
    insert("experiment_tags", experiment_id=1, key="team", value="old-timers")
    runs = {
        "legacy-parent": "FINISHED", "legacy-child": "FINISHED", "legacy-failed": "FAILED",
        "legacy-running": "RUNNING", "legacy-killed": "KILLED", "legacy-deleted": "FINISHED",
    }  # fmt: skip
    ids: dict[str, str] = {}
    for i, (name, status) in enumerate(runs.items()):
        run_id = uuid.uuid4().hex
        ids[name] = run_id
        start = 1_650_000_000_000 + i * 60_000
        insert("runs", run_uuid=run_id, name=name, source_type="LOCAL", source_name="train.py",
               entry_point_name="", user_id="olga", status=status, start_time=start,
               end_time=None if status == "RUNNING" else start + 30_000, source_version="",
               lifecycle_stage="deleted" if name == "legacy-deleted" else "active",
               artifact_uri=f"/tmp/a/1/{run_id}/artifacts", experiment_id=1)  # fmt: skip
        tags = {"mlflow.user": "olga", "mlflow.runName": name}
        if name == "legacy-child":
            tags["mlflow.parentRunId"] = ids["legacy-parent"]
        for key, value in tags.items():
            insert("tags", key=key, value=value, run_uuid=run_id)
        insert("params", key="depth", value=str(3 + i), run_uuid=run_id)
        insert("params", key="note", value="température ✓", run_uuid=run_id)
        for step in range(3):
            value = 1.0 / (i + step + 1)
            insert("metrics", key="rmse", value=value, timestamp=start + step, step=step,
                   is_nan=False, run_uuid=run_id)  # fmt: skip
        insert("latest_metrics", key="rmse", value=value, timestamp=start + 2, step=2,
               is_nan=False, run_uuid=run_id)  # fmt: skip
    insert("registered_models", name="legacy-model", creation_time=1_650_000_000_000,
           last_updated_time=1_650_000_000_000, description=None)  # fmt: skip
    for version, stage in ((1, "Archived"), (2, "Production")):
        insert("model_versions", name="legacy-model", version=version,
               creation_time=1_650_000_000_000, last_updated_time=1_650_000_000_000,
               description=None, user_id=None, current_stage=stage,
               source=f"/tmp/a/1/{ids['legacy-parent']}/artifacts/model",
               run_id=ids["legacy-parent"], status="READY", status_message=None,
               run_link=None)  # fmt: skip
    return ids
