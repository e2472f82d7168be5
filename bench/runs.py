"""`python -m bench.runs --runs N`: read speed of the runs table at scale. Prints ONE JSON line.

The store (SQLite, MLflow's own schema created by MLflow) is built once and kept under
bench/.cache/runs-N/. Creating 10,000 runs through the client takes about 11 minutes here, so
the rows are bulk-inserted into MLflow's tables (runs, params, tags, metrics with a metric
history, latest_metrics) in one transaction, then checked through MlflowClient before use.

Layout: up to 10,000 runs, one experiment of N runs with a 50-step history per metric. From
100,000 runs, the size of a real team's store: 50 experiments, the measured one holding 20,000
runs and the others sharing the rest, with a 5-step history (`--experiments`, `--largest`).

Measured on the largest experiment: raw_search_s (MlflowClient.search_runs paging through all
its runs, no dashboard code), first_page_s (the first 100 rows, newest first, as the Experiments
page asks; median of three, raw_first_page_s the same through MLflow's client), full_table_s
(the all-runs table, cold), refresh_s (the all-runs table after one new run was logged),
cache_hit_s (the same call repeated with nothing new), path (what served the full table),
full_table_ratio (full_table_s / raw_search_s) and app_peak_rss_mib (this process's peak
resident memory after the dashboard's reads, before MLflow's own search runs).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sqlite3
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parent / ".cache"
EXPERIMENT = "bench-runs"
N_PARAMS, N_METRICS = 10, 10
USERS = ("alice", "bob", "carol", "dana", "erin")
TEAM_SCALE = 100_000  # from here on: many experiments, one of them large, a short history


def layout(n_runs: int, experiments: int | None, largest: int | None) -> list[int]:
    """Runs per experiment, the measured (largest) one first."""
    count = experiments or (50 if n_runs >= TEAM_SCALE else 1)
    if count <= 1:
        return [n_runs]
    first = min(n_runs, largest or 20_000)
    rest, extra = divmod(n_runs - first, count - 1)
    return [first] + [rest + (1 if i < extra else 0) for i in range(count - 1)]


def history_steps(n_runs: int) -> int:
    return 5 if n_runs >= TEAM_SCALE else 50


def _settings(folder: Path) -> Any:
    from app.settings import Settings

    return Settings.from_env(
        env={
            "COUNTERSIGN_DATA_DIR": str(folder),
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        }
    )


def build_store(folder: Path, sizes: list[int], steps: int) -> str:
    """Create the store once; return the largest experiment's id. Reuses a complete build."""
    marker = folder / "complete.json"
    if marker.is_file():
        return str(json.loads(marker.read_text())["experiment_id"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # creates MLflow's schema
    art = (folder / "art").as_uri()
    names = [EXPERIMENT] + [f"{EXPERIMENT}-{i:02d}" for i in range(1, len(sizes))]
    ids = [int(client.create_experiment(n, artifact_location=f"{art}/{n}")) for n in names]
    _bulk_insert(folder / "mlflow.db", list(zip(ids, sizes, strict=True)), art, steps)
    exp_id = str(ids[0])
    runs = client.search_runs([exp_id], max_results=2)
    history = client.get_metric_history(runs[0].info.run_id, "metric_0")
    assert len(runs[0].data.params) == N_PARAMS, "bench store: params missing"
    assert len(runs[0].data.metrics) == N_METRICS, "bench store: metrics missing"
    assert [m.step for m in history] == list(range(steps)), "bench store: history missing"
    last = client.search_runs([str(ids[-1])], max_results=1)
    assert len(last) == 1, "bench store: runs missing"
    assert last[0].info.experiment_id == str(ids[-1]), "bench store: runs misplaced"
    marker.write_text(json.dumps({"experiment_id": exp_id, "sizes": sizes, "steps": steps}))
    return exp_id


def _bulk_insert(db: Path, experiments: list[tuple[int, int]], art: str, steps: int) -> None:
    rng = random.Random(42)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA journal_mode = MEMORY")
    n_runs = sum(size for _, size in experiments)
    base = int(time.time() * 1000) - n_runs * 60_000
    owner = [exp_id for exp_id, size in experiments for _ in range(size)]
    chunk = 250
    with conn:
        for first in range(0, n_runs, chunk):
            runs, params, tags, metrics, latest = [], [], [], [], []
            for i in range(first, min(first + chunk, n_runs)):
                rid = uuid.UUID(int=rng.getrandbits(128)).hex
                start = base + i * 60_000
                user = USERS[i % len(USERS)]
                name = f"run-{i:06d}"
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
                        f"{art}/{owner[i]}/{rid}/artifacts",
                        owner[i],
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
                    for step in range(steps):
                        value *= 0.99
                        metrics.append((f"metric_{m}", value, start + step * 100, rid, step, 0))
                    latest.append(
                        (f"metric_{m}", value, start + (steps - 1) * 100, steps - 1, 0, rid)
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


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run(n_runs: int, experiments: int | None = None, largest: int | None = None) -> dict[str, Any]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from app.mlflow_gateway import MlflowGateway

    sizes = layout(n_runs, experiments, largest)
    suffix = "" if len(sizes) == 1 else f"-x{len(sizes)}-{sizes[0]}"
    folder = CACHE / f"runs-{n_runs}{suffix}"
    exp_id = build_store(folder, sizes, history_steps(n_runs))
    measured = sizes[0]
    settings = _settings(folder)
    gateway = MlflowGateway(settings)
    gateway.health()  # store start-up is not what we measure
    order = ["attributes.start_time DESC"]
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    # The first page through the dashboard and through MLflow's client, alternating, median of
    # three each: the first query of a process warms the database file for whoever comes next.
    ours, theirs = [], []
    for _ in range(3):
        took, page = _timed(
            lambda: gateway.search_runs_page([exp_id], order_by=order, page_size=100)
        )
        ours.append(took)
        theirs.append(
            _timed(lambda: client.search_runs([exp_id], order_by=order, max_results=100))[0]
        )
    first_s, raw_first_s = statistics.median(ours), statistics.median(theirs)
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
        _remove_run(folder / "mlflow.db", new.info.run_id)  # keep the cached store as built
    app_rss = _peak_rss_mib()

    def raw_search() -> int:
        count, token = 0, None
        while True:
            found = client.search_runs([exp_id], max_results=1000, page_token=token)
            count += len(found)
            token = found.token
            if not token:
                return count

    raw_s, raw_count = _timed(raw_search)
    assert raw_count == measured == len(table), (raw_count, measured, len(table))
    assert len(refreshed) == measured + 1
    assert len(page.runs) == min(100, measured)
    return {
        "runs": n_runs,
        "experiments": len(sizes),
        "measured_experiment_runs": measured,
        "raw_search_s": round(raw_s, 3),
        "raw_first_page_s": round(raw_first_s, 3),
        "first_page_s": round(first_s, 3),
        "first_page_ratio": round(first_s / raw_first_s, 3),
        "full_table_s": round(full_s, 3),
        "full_table_ratio": round(full_s / raw_s, 3),
        "refresh_s": round(refresh_s, 3),
        "cache_hit_s": round(hit_s, 4),
        "path": f"{path}; refresh {refresh_path}; repeat {hit_path}",
        "app_peak_rss_mib": app_rss,
        "loadavg": Path("/proc/loadavg").read_text().strip(),
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
    parser.add_argument(
        "--experiments", type=int, default=None, help="default: 1, or 50 from 100,000 runs"
    )
    parser.add_argument(
        "--largest", type=int, default=None, help="runs in the measured experiment (20,000)"
    )
    args = parser.parse_args()
    print(json.dumps(run(args.runs, args.experiments, args.largest)))


if __name__ == "__main__":
    main()
