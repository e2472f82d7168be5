"""The registry benchmark's store: 200 registered models with up to 60 versions each.

Registering 6,000 versions through MLflow's client takes most of an hour here, so MLflow creates
its own schema and then the rows are written in bulk into its tables (runs with their tags,
params and latest metrics; registered models, their tags and aliases; model versions and their
tags), in one transaction, and read back through MlflowClient before use. The model that is
measured (`MEASURED`, 60 versions) has an MLmodel file with a signature for every version.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import time
import uuid
from pathlib import Path

MODELS = 200
MAX_VERSIONS = 60
MEASURED = "model-000"
USERS = ("alice", "bob", "carol", "dana", "erin")
METRICS = ("rmse", "mae", "r2", "accuracy", "f1")
N_PARAMS = 8
N_FEATURES = 20


def versions_of(i: int) -> int:
    """1 to 60 versions; every tenth model (the measured one among them) has all 60."""
    return MAX_VERSIONS if i % 10 == 0 else 1 + (i * 37) % MAX_VERSIONS


def stage_of(version: int, latest: int) -> str:
    if version == latest:
        return "Staging"
    if version == latest - 1:
        return "Production"
    return "Archived" if version % 3 == 0 else "None"


def build(folder: Path) -> dict[str, int]:
    """Create the store once under `folder`; returns {"models", "versions"}."""
    marker = folder / "complete.json"
    if marker.is_file():
        return dict(json.loads(marker.read_text()))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # creates MLflow's schema
    art = folder / "art"
    exp_id = int(client.create_experiment("bench-registry", artifact_location=art.as_uri()))
    versions = _bulk_insert(folder / "mlflow.db", exp_id, art)
    _check(client, versions)
    found = {"models": MODELS, "versions": versions}
    marker.write_text(json.dumps(found))
    return found


def _bulk_insert(db: Path, exp_id: int, art: Path) -> int:
    rng = random.Random(7)
    now = int(time.time() * 1000)
    rows: dict[str, list[tuple[object, ...]]] = {
        k: [] for k in ("runs", "tags", "params", "latest", "models", "mtags", "mv", "mvtags", "al")
    }
    count = 0
    for i in range(MODELS):
        name = f"model-{i:03d}"
        n = versions_of(i)
        created = now - (MODELS - i) * 86_400_000
        rows["models"].append((name, created, created + n * 3_600_000, f"Model {i}.", "default"))
        rows["mtags"] += [
            ("team", f"team-{i % 7}", name, "default"),
            ("domain", "risk", name, "default"),
        ]
        if n >= 2:
            rows["al"] += [("champion", n - 1, name, "default"), ("challenger", n, name, "default")]
        for v in range(1, n + 1):
            count += 1
            rid = uuid.UUID(int=rng.getrandbits(128)).hex
            user = USERS[(i + v) % len(USERS)]
            start = created + v * 3_600_000
            rows["runs"].append(
                (rid, f"{name}-train-{v}", "LOCAL", "train.py", "", user, "FINISHED", start,
                 start + 60_000, "", "active", f"{art.as_uri()}/{rid}/artifacts", exp_id)
            )  # fmt: skip
            rows["tags"] += [
                ("mlflow.user", user, rid),
                ("mlflow.runName", f"{name}-train-{v}", rid),
            ]
            rows["params"] += [(f"param_{p}", str(rng.randint(1, 9)), rid) for p in range(N_PARAMS)]
            rows["latest"] += [(m, rng.random(), start, 0, 0, rid) for m in METRICS]
            source = (art / "models" / name / str(v)).as_uri()
            description = None if v % 4 == 0 else f"{name} v{v}"
            rows["mv"].append(
                (name, v, start, start, description, None, stage_of(v, n), source, rid, "READY",
                 None, None, source, "default")
            )  # fmt: skip
            rows["mvtags"].append(("validation_status", "approved", name, v, "default"))
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")
    with conn:
        conn.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows["runs"],
        )
        conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", rows["tags"])
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", rows["params"])
        conn.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?,?,?,?,?,?)",
            rows["latest"],
        )
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?,?,?,?,?,?)",
            rows["latest"],
        )
        conn.executemany(
            "INSERT INTO registered_models (name, creation_time, last_updated_time, "
            "description, workspace) VALUES (?,?,?,?,?)",
            rows["models"],
        )
        conn.executemany(
            "INSERT INTO registered_model_tags (key, value, name, workspace) VALUES (?,?,?,?)",
            rows["mtags"],
        )
        conn.executemany(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time, "
            "description, user_id, current_stage, source, run_id, status, status_message, "
            "run_link, storage_location, workspace) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows["mv"],
        )
        conn.executemany(
            "INSERT INTO model_version_tags (key, value, name, version, workspace) "
            "VALUES (?,?,?,?,?)",
            rows["mvtags"],
        )
        conn.executemany(
            "INSERT INTO registered_model_aliases (alias, version, name, workspace) "
            "VALUES (?,?,?,?)",
            rows["al"],
        )
    conn.close()
    _mlmodels(art / "models" / MEASURED, versions_of(0))
    return count


def _mlmodels(folder: Path, versions: int) -> None:
    """An MLmodel with a signature for each version of the measured model."""
    for v in range(1, versions + 1):
        inputs = [{"name": f"f{c}", "type": "double", "required": True} for c in range(N_FEATURES)]
        if v % 5 == 0:  # the schema changes now and then
            inputs[-1] = {"name": f"f{N_FEATURES - 1}", "type": "long", "required": True}
        signature = {"inputs": json.dumps(inputs), "outputs": json.dumps([{"type": "double"}])}
        target = folder / str(v)
        target.mkdir(parents=True, exist_ok=True)
        (target / "MLmodel").write_text(
            "artifact_path: model\nflavors: {}\nsignature:\n"
            f"  inputs: '{signature['inputs']}'\n  outputs: '{signature['outputs']}'\n",
            encoding="utf-8",
        )


def _check(client: object, versions: int) -> None:
    from mlflow import MlflowClient

    assert isinstance(client, MlflowClient)
    models, token = [], None
    while True:
        page = client.search_registered_models(max_results=1000, page_token=token)
        models.extend(page)
        token = page.token
        if not token:
            break
    assert len(models) == MODELS, f"bench store: {len(models)} models"
    measured = client.get_registered_model(MEASURED)
    assert measured.aliases == {"champion": MAX_VERSIONS - 1, "challenger": MAX_VERSIONS}
    found = client.search_model_versions(f"name = '{MEASURED}'", max_results=1000)
    assert len(found) == MAX_VERSIONS, f"bench store: {len(found)} versions of {MEASURED}"
    assert sum(versions_of(i) for i in range(MODELS)) == versions
    run = client.get_run(found[0].run_id)
    assert set(run.data.metrics) == set(METRICS), "bench store: metrics missing"
