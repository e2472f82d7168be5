"""The Monitoring page's data: stored batches in, plain frames out (pure pandas, no I/O).

Kept cheap on purpose: 365 batches of 50 columns become the timeline and the heatmap in a few
tens of milliseconds (`python -m bench.monitoring` measures `timeline_s`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from governance.monitoring_rules import (
    DRIFT_SHARE,
    QUALITY_METRICS,
    MonitoringBatch,
    MonitoringThresholds,
)

TIMELINE_COLUMNS = ["version", "batch_id", "as_of", "metric", "value"]
MAX_INTENSITY = 3.0  # the heatmap's colour scale: 1 is the threshold, 3 and more is "far past"


def timeline(batches: Mapping[str, Sequence[MonitoringBatch]]) -> pd.DataFrame:
    """One row per (version, batch, metric): the drift share and every quality metric."""
    rows: list[tuple[str, str, Any, str, float]] = []
    for version, items in batches.items():
        for b in items:
            rows.append((version, b.batch_id, b.as_of, DRIFT_SHARE, b.share_drifted))
            rows.extend(
                (version, b.batch_id, b.as_of, metric, value)
                for metric, value in b.metrics().items()
            )
    frame = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    return frame


def metrics_in(frame: pd.DataFrame) -> list[str]:
    """The metrics a timeline holds: the drift share first, then quality in a stable order."""
    present = set(frame["metric"]) if not frame.empty else set()
    return [m for m in (DRIFT_SHARE, *QUALITY_METRICS) if m in present]


def threshold_lines(
    thresholds: MonitoringThresholds | None, metric: str
) -> list[tuple[str, float]]:
    """("min" | "max", value) lines the policy draws on one metric's chart."""
    bound = thresholds.bound(metric) if thresholds else None
    if bound is None:
        return []
    return [(k, v) for k, v in (("min", bound.min), ("max", bound.max)) if v is not None]


def intensity(method: str, score: float | None, threshold: float) -> float:
    """A column's drift on one scale: 1 at its threshold, more is further past it.

    p-values (smaller is drift) compare on -log10; distances (larger is drift) as a ratio.
    """
    if score is None or not math.isfinite(score):
        return float("nan")
    if "p_value" in method:
        if score <= 0:
            return MAX_INTENSITY
        low = -math.log10(max(threshold, 1e-300))
        value = -math.log10(score) / low if low > 0 else 0.0
    else:
        value = score / threshold if threshold > 0 else (MAX_INTENSITY if score > 0 else 0.0)
    return float(min(max(value, 0.0), MAX_INTENSITY))


def heatmap(batches: Sequence[MonitoringBatch], top: int = 40) -> pd.DataFrame:
    """Columns (rows, most often drifted first) by batches (as-of order): drift intensity.

    At most `top` columns; the order is by how many batches each drifted in, then by mean
    intensity, then by name.
    """
    if not batches:
        return pd.DataFrame()
    labels = [f"{b.as_of:%Y-%m-%d %H:%M}" for b in batches]
    values: dict[str, list[float]] = {}
    drifted: dict[str, int] = {}
    for i, b in enumerate(batches):
        for c in b.columns_list():
            name = str(c["column"])
            series = values.setdefault(name, [float("nan")] * len(batches))
            series[i] = intensity(str(c["method"]), c.get("score"), float(c["threshold"]))
            drifted[name] = drifted.get(name, 0) + bool(c["drifted"])
    means = {
        name: float(np.nanmean(v)) if not np.all(np.isnan(v)) else 0.0 for name, v in values.items()
    }
    order = sorted(values, key=lambda n: (-drifted[n], -means[n], n))[:top]
    frame = pd.DataFrame([values[n] for n in order], index=order, columns=labels)
    frame.index.name = "column"
    return frame


def batches_table(batches: Sequence[MonitoringBatch]) -> pd.DataFrame:
    """The batches newest first: when, how many rows, drift, and the quality metrics."""
    rows = []
    for b in reversed(batches):
        row: dict[str, Any] = {
            "as_of": f"{b.as_of:%Y-%m-%d %H:%M}",
            "batch": b.batch_id,
            "rows": b.rows,
            "share drifted": b.share_drifted,
            "data set drift": b.dataset_drift,
        }
        row.update(b.metrics())
        rows.append(row)
    return pd.DataFrame(rows)
