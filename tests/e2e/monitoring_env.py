"""A store for the monitoring tests: a copy of the demo MLflow store, a governance database with
the demo and test users, a policy that thresholds tumor-classifier's production batches, and a
folder of dated production batches cut from the demo's own scored data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.e2e.gov_env import prepare, store_env

MODEL = "tumor-classifier"
POLICY = """
version: 1
defaults: {approver_roles: [approver], quorum: 1, expires_after: 7d}
models:
  "tumor-*":
    monitoring:
      max_drift_share: 0.5
      metrics: {accuracy: {min: 0.98}}
      consecutive: 2
"""
DAYS = ("2026-11-01", "2026-11-02", "2026-11-03")


def demo_current(demo_data_dir: Path, version: str = "2") -> pd.DataFrame:
    """The production-like batch that the demo scored with one classifier version (features,
    target, prediction). Every demo run logs its own `current.parquet` with its own model's
    predictions, so the run is looked up by version, never by listing order."""
    import sqlite3

    with sqlite3.connect(f"file:{demo_data_dir / 'mlflow.db'}?mode=ro", uri=True) as db:
        (run_id,) = db.execute(
            "SELECT run_id FROM model_versions WHERE name = ? AND version = ?",
            (MODEL, int(version)),
        ).fetchone()
    path = (
        demo_data_dir / "mlartifacts" / "tumor-classification" / run_id / "artifacts" / "data"
    ) / "current.parquet"
    return pd.read_parquet(path)


def build(demo_data_dir: Path, root: Path) -> dict[str, str]:
    """Prepare everything in `root`; returns the environment of the app and the CLI."""
    env = store_env(demo_data_dir, root)
    (root / "policy.yaml").write_text(POLICY, encoding="utf-8")
    env["COUNTERSIGN_POLICY"] = str(root / "policy.yaml")
    prepare(env)
    batches = root / "batches"
    batches.mkdir()
    current = demo_current(demo_data_dir)
    for i, day in enumerate(DAYS):
        part = current.sample(150, random_state=i).reset_index(drop=True)
        part.to_parquet(batches / f"tumor-{day}.parquet", index=False)
    return env
