"""`python -m bench.monitoring`: monitoring over time at a year of daily batches.

One model version in a real MLflow store (SQLite) whose run logged a 10,000 x 50 reference
(44 numerical, 3 integer and 1 text categorical features, an integer label and a prediction);
a fresh governance database (SQLite) with a policy that thresholds the drift share and the
accuracy. Prints one JSON line:

- score_all_s: 365 daily batches of 10,000 x 50 scored and recorded from scratch (an empty
  database), each through `BatchMonitoring.run_frame` as `monitor run` does (drift against the
  version's reference, quality, the batch row, its audit entry and the threshold evaluation).
  Making the synthetic batches is not timed.
- one_batch_s: one more batch, with the version's reference profile already prepared (median
  of 5 new batches).
- timeline_s: the Monitoring page's data for the 365 batches (`deps.monitoring_view` without
  Streamlit's cache: the history read, the timeline, the heatmap and the batch table).
- evidently_one_batch_s: Evidently's DataDriftPreset on the reference and one batch, in the
  same process (Evidently imported before any timing).
- profile_s: preparing the version's reference statistics once (sorted finite values per
  numerical column, cleaned values per categorical one); every batch after that reuses them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MODEL = "bench-classifier"
POLICY = """
version: 1
models:
  "bench-*":
    monitoring:
      max_drift_share: 0.5
      metrics: {accuracy: {min: 0.8}}
      consecutive: 3
"""


def make_batch(rows: int, day: int, seed: int) -> pd.DataFrame:
    """48 features, `target` and `prediction`; drift and quality loss grow over the year."""
    rng = np.random.default_rng(seed)
    drift = day / 365
    data: dict[str, Any] = {}
    for i in range(44):
        shift = 0.4 * drift if i % 4 == 0 else 0.0
        data[f"num_{i:02d}"] = rng.normal(shift, 1.0 + (0.2 * drift if i % 7 == 0 else 0.0), rows)
    for i in range(3):
        data[f"cat_{i}"] = rng.integers(0, 4 + i, rows)
    data["region"] = rng.choice(["north", "south", "east", "west"], rows, p=[0.4, 0.3, 0.2, 0.1])
    target = rng.integers(0, 2, rows)
    wrong = rng.random(rows) < 0.08 + 0.15 * drift
    data["target"] = target
    data["prediction"] = np.where(wrong, 1 - target, target)
    return pd.DataFrame(data)


def _store(root: Path, reference: pd.DataFrame) -> Any:
    """A real MLflow store with one registered version whose run logged the reference."""
    from mlflow import MlflowClient

    from app.settings import Settings

    settings = Settings.from_env(
        env={
            "COUNTERSIGN_DATA_DIR": str(root),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "COUNTERSIGN_DB_URL": f"sqlite:///{root / 'governance.db'}",
            "COUNTERSIGN_POLICY": str(root / "policy.yaml"),
        },
        secrets_path=root / "none.toml",
    )
    (root / "policy.yaml").write_text(POLICY, encoding="utf-8")
    client = MlflowClient(settings.tracking_uri)
    exp = client.create_experiment("bench", artifact_location=(root / "artifacts").as_uri())
    run = client.create_run(exp)
    folder = root / "upload" / "data"
    folder.mkdir(parents=True)
    reference.to_parquet(folder / "reference.parquet", index=False)
    client.log_artifacts(run.info.run_id, str(folder), "data")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(MODEL)
    client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run.info.run_id)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.monitoring")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=365)
    args = parser.parse_args(argv)

    import evidently  # noqa: F401  (import costs are not part of any measurement)
    import mlflow  # noqa: F401

    from app.batch_monitoring import timeline
    from app.bootstrap import build_batch_monitoring, build_governance, upgrade_governance_db
    from app.reports.evidently_report import run_preset
    from governance.domain import CLI_OPERATOR

    reference = make_batch(args.rows, 0, seed=1)
    start_day = datetime(2026, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        settings = _store(Path(tmp), reference)
        upgrade_governance_db(settings)
        facade = build_governance(settings)
        service = build_batch_monitoring(settings, facade)
        started = time.perf_counter()
        service.reference_frame(MODEL, "1")  # reads the reference and prepares its profile
        profile_s = time.perf_counter() - started

        score_all_s = 0.0
        for day in range(args.batches):
            batch = make_batch(args.rows, day, seed=100 + day)
            started = time.perf_counter()
            service.run_frame(
                CLI_OPERATOR, MODEL, "1", batch,
                as_of=start_day + timedelta(days=day), source=f"day-{day}",
                label="target", prediction="prediction",
            )  # fmt: skip
            score_all_s += time.perf_counter() - started

        one: list[float] = []
        for extra in range(5):
            batch = make_batch(args.rows, args.batches + extra, seed=9000 + extra)
            started = time.perf_counter()
            service.run_frame(
                CLI_OPERATOR, MODEL, "1", batch,
                as_of=start_day + timedelta(days=args.batches + extra), source=f"extra-{extra}",
                label="target", prediction="prediction",
            )  # fmt: skip
            one.append(time.perf_counter() - started)

        history = service.history(CLI_OPERATOR, MODEL, "1")[: args.batches]
        started = time.perf_counter()
        history = service.history(CLI_OPERATOR, MODEL, "1")
        timeline.timeline({"1": history})
        timeline.heatmap(history)
        timeline.batches_table(history)
        timeline_s = time.perf_counter() - started
        findings = len(service.findings(CLI_OPERATOR, MODEL, only_open=False))
        facade.dispose()

    batch = make_batch(args.rows, 200, seed=77)
    started = time.perf_counter()
    run_preset(reference, batch, infer=True)
    evidently_s = time.perf_counter() - started
    one_batch_s = statistics.median(one)
    print(
        json.dumps(
            {
                "rows": args.rows,
                "columns": reference.shape[1],
                "batches": args.batches,
                "score_all_s": round(score_all_s, 2),
                "one_batch_s": round(one_batch_s, 4),
                "timeline_s": round(timeline_s, 4),
                "evidently_one_batch_s": round(evidently_s, 2),
                "speedup": round(evidently_s / one_batch_s, 1),
                "profile_s": round(profile_s, 4),
                "findings": findings,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
