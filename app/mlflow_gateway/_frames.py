"""One builder for the all-runs table, shared by the SQL and the API paths.

Both paths reduce a store to the same four long frames (runs, params, metrics, tags) and hand
them to `build_table`, so the two can only differ in what they read, never in how it is shaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

BASE_COLUMNS = ("run_id", "run_name", "status", "user", "start_time", "end_time", "experiment_id")
RUN_COLUMNS = ("run_id", "run_name", "status", "user", "start_ms", "end_ms", "experiment_id")
LONG_COLUMNS = ("run_id", "key", "value")
FINISHED = frozenset({"FINISHED", "FAILED", "KILLED"})


def empty_long() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in LONG_COLUMNS})


def runs_frame(rows: Iterable[tuple[Any, ...]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(RUN_COLUMNS), dtype=object)
    for col in ("run_id", "run_name", "status", "user", "experiment_id"):
        frame[col] = frame[col].map(lambda v: "" if v is None else str(v)).astype(object)
    return frame


def long_frame(rows: Iterable[tuple[str, str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(LONG_COLUMNS), dtype=object)
    return frame if len(frame) else empty_long()


def _wide(long: pd.DataFrame, prefix: str, numeric: bool) -> pd.DataFrame:
    if long.empty:
        return pd.DataFrame()
    wide = long.pivot(index="run_id", columns="key", values="value")
    wide = wide.reindex(columns=sorted(wide.columns))
    wide.columns = [f"{prefix}.{c}" for c in wide.columns]
    wide.columns.name = None
    if numeric:
        return wide.astype("float64")
    # Strings stay plain Python objects with None for "not logged on this run".
    return wide.astype(object).where(wide.notna(), None)


def build_table(
    runs: pd.DataFrame, params: pd.DataFrame, metrics: pd.DataFrame, tags: pd.DataFrame
) -> pd.DataFrame:
    """Pivot the long frames onto the runs: newest first, then by run id.

    Args:
        runs: RUN_COLUMNS, times in epoch milliseconds (None when unknown).
        params, metrics, tags: run_id, key, value (metrics as floats, NaN allowed).
    """
    base = pd.DataFrame(
        {
            "run_id": runs["run_id"].astype(object),
            "run_name": runs["run_name"].astype(object),
            "status": runs["status"].astype(object),
            "user": runs["user"].astype(object),
            "start_time": _times(runs["start_ms"]),
            "end_time": _times(runs["end_ms"]),
            "experiment_id": runs["experiment_id"].astype(object),
        }
    )
    base = base.set_index("run_id", drop=False)
    base.index.name = None
    parts = [base]
    for long, prefix, numeric in ((params, "params", False), (metrics, "metrics", True)):
        parts.append(_wide(long, prefix, numeric))
    parts.append(_wide(tags, "tags", False))
    table = pd.concat([p for p in parts if not p.empty or p is base], axis=1, join="outer")
    table = table.loc[base.index]
    for col in table.columns:
        if col.startswith(("params.", "tags.")):
            table[col] = table[col].astype(object).where(table[col].notna(), None)
    # Newest first like MLflow's default order; the run id breaks ties deterministically.
    key = table["start_time"].to_numpy(dtype="datetime64[ms]").astype("int64").astype("float64")
    key[table["start_time"].isna().to_numpy()] = -np.inf
    table = table.assign(_key=-key).sort_values(["_key", "run_id"], kind="stable")
    return table.drop(columns="_key").reset_index(drop=True)


def _times(ms: pd.Series) -> pd.Series:
    values = pd.to_numeric(ms, errors="coerce").astype("float64")
    values = values.where(values > 0)
    return pd.to_datetime(values, unit="ms", utc=True).astype("datetime64[ms, UTC]")
