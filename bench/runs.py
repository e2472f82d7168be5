"""`python -m bench.runs --runs N`: read speed of the runs table at scale. Prints ONE JSON line.

The store (SQLite, MLflow's own schema created by MLflow) is built once and kept under
bench/.cache/runs-N/. Creating 10,000 runs through the client takes about 11 minutes here, so
the rows are bulk-inserted into MLflow's tables (runs, params, tags, metrics with a 50-step
history, latest_metrics) in one transaction, then checked through MlflowClient before use.

Measured: raw_search_s (MlflowClient.search_runs paging through all N runs, no dashboard code),
first_page_s (first 100 rows of the runs table), full_table_s (the all-runs table, cold),
refresh_s (the all-runs table after one new run was logged), cache_hit_s (the same call repeated
with nothing new) and path (what served the full table).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parent / ".cache"
EXPERIMENT = "bench-runs"
N_PARAMS, N_METRICS, N_STEPS = 10, 10, 50
USERS = ("alice", "bob", "carol", "dana", "erin")


def _settings(folder: Path) -> Any:
    from app.settings import Settings

    return Settings.from_env(
        env={
            "COUNTERSIGN_DATA_DIR": str(folder),
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        }
    )


def build_store(folder: Path, n_runs: int) -> str:
    """Create the store once; return the experiment id. Reuses a complete earlier build."""
    marker = folder / "complete.json"
    if marker.is_file():
        return str(json.loads(marker.read_text())["experiment_id"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # creates MLflow's schema
    exp_id = client.create_experiment(EXPERIMENT, artifact_location=(folder / "art").as_uri())
    _bulk_insert(folder / "mlflow.db", int(exp_id), n_runs, (folder / "art").as_uri())
    runs = client.search_runs([exp_id], max_results=2)
    history = client.get_metric_history(runs[0].info.run_id, "metric_0")
    assert len(runs[0].data.params) == N_PARAMS, "bench store: params missing"
    assert len(runs[0].data.metrics) == N_METRICS, "bench store: metrics missing"
    assert [m.step for m in history] == list(range(N_STEPS)), "bench store: history missing"
    marker.write_text(json.dumps({"experiment_id": exp_id, "runs": n_runs}))
    return str(exp_id)


def _bulk_insert(db: Path, exp_id: int, n_runs: int, art: str) -> None:
    rng = random.Random(42)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA journal_mode = MEMORY")
    base = int(time.time() * 1000) - n_runs * 60_000
    chunk = 250
    with conn:
        for first in range(0, n_runs, chunk):
            runs, params, tags, metrics, latest = [], [], [], [], []
            for i in range(first, min(first + chunk, n_runs)):
                rid = uuid.UUID(int=rng.getrandbits(128)).hex
                start = base + i * 60_000
                user = USERS[i % len(USERS)]
                name = f"run-{i:05d}"
                runs.append(
                    (
                        rid,
                        name,
                        "LOCAL",
                        "train.py",
                        "",
                        user,
                        "FINISHED",
                        start,
                        start + 30_000,
                        "",
                        "active",
                        f"{art}/{rid}/artifacts",
                        exp_id,
                    )
                )
                params += [(f"param_{p}", str(rng.randint(1, 100)), rid) for p in range(N_PARAMS)]
                tags += [
                    (k, v, rid)
                    for k, v in (
                        ("mlflow.user", user),
                        ("mlflow.runName", name),
                        ("mlflow.source.type", "LOCAL"),
                        ("team", f"team-{i % 3}"),
                    )
                ]
                for m in range(N_METRICS):
                    value = rng.random()
                    for step in range(N_STEPS):
                        value *= 0.99
                        metrics.append((f"metric_{m}", value, start + step * 100, rid, step, 0))
                    latest.append(
                        (f"metric_{m}", value, start + (N_STEPS - 1) * 100, N_STEPS - 1, 0, rid)
                    )
            conn.executemany(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
                "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
                "artifact_uri, experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                runs,
            )
            conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
            conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
            conn.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                "VALUES (?,?,?,?,?,?)",
                metrics,
            )
            conn.executemany(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                "VALUES (?,?,?,?,?,?)",
                latest,
            )
    conn.close()  # fmt: skip


def _timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def run(n_runs: int) -> dict[str, Any]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from app.mlflow_gateway import MlflowGateway

    folder = CACHE / f"runs-{n_runs}"
    exp_id = build_store(folder, n_runs)
    settings = _settings(folder)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    client.search_experiments(max_results=1)  # store start-up is not what we measure

    def raw_search() -> int:
        count, token = 0, None
        while True:
            page = client.search_runs([exp_id], max_results=1000, page_token=token)
            count += len(page)
            token = page.token
            if not token:
                return count

    raw_s, raw_count = _timed(raw_search)
    gateway = MlflowGateway(settings)
    gateway.health()
    first_s, page = _timed(lambda: gateway.search_runs_page([exp_id], page_size=100))
    full_s, (table, path) = _timed(lambda: gateway.runs_table([exp_id]))
    new = client.create_run(exp_id, tags={"mlflow.user": "dana"})
    try:
        client.log_batch(
            new.info.run_id,
            metrics=[Metric("metric_0", 0.5, int(time.time() * 1000), 0)],
            params=[Param("param_0", "7")],
            tags=[RunTag("team", "team-0")],
        )
        client.set_terminated(new.info.run_id)
        refresh_s, (refreshed, refresh_path) = _timed(lambda: gateway.runs_table([exp_id]))
        hit_s, (_, hit_path) = _timed(lambda: gateway.runs_table([exp_id]))
    finally:
        _remove_run(folder / "mlflow.db", new.info.run_id)  # keep the cached store at N runs
    assert raw_count == n_runs == len(table), (raw_count, n_runs, len(table))
    assert len(refreshed) == n_runs + 1
    assert len(page.runs) == min(100, n_runs)
    return {
        "runs": n_runs,
        "raw_search_s": round(raw_s, 3),
        "first_page_s": round(first_s, 3),
        "full_table_s": round(full_s, 3),
        "refresh_s": round(refresh_s, 3),
        "cache_hit_s": round(hit_s, 4),
        "path": f"{path}; refresh {refresh_path}; repeat {hit_path}",
    }


def _remove_run(db: Path, run_id: str) -> None:
    conn = sqlite3.connect(db)
    with conn:
        for table in ("metrics", "latest_metrics", "params", "tags", "runs"):
            conn.execute(f"DELETE FROM {table} WHERE run_uuid = ?", (run_id,))
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(run(args.runs)))


if __name__ == "__main__":
    main()
