"""Monitoring records: a scored batch, the figures thresholds read from it, and a finding.

Standard library only; the rules that judge them live in governance.monitoring_rules.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

DRIFT_SHARE = "drift_share"
# The quality metrics a batch may carry (app.reports.quality computes them, Evidently's names).
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2")
QUALITY_METRICS = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
OPEN, CLOSED = "open", "closed"


def _finite(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


@dataclass(frozen=True)
class BatchFigures:
    """What the thresholds read from one batch."""

    batch_id: str
    as_of: datetime
    recorded_at: datetime
    share_drifted: float
    quality: Mapping[str, float]

    def value(self, check: str) -> float | None:
        raw = self.share_drifted if check == DRIFT_SHARE else self.quality.get(check)
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
            return float(raw)
        return None


@dataclass(frozen=True)
class MonitoringBatch:
    """One scored batch of production data for one model version (an ordinary row).

    `columns` is the canonical JSON list of per-column results (column, type, method, score,
    threshold, drifted); `quality` the canonical JSON object of quality metrics, or "" without
    labels and predictions.
    """

    batch_id: str
    model: str
    version: str
    content_sha256: str
    as_of: datetime
    recorded_at: datetime
    recorded_by: str
    source: str
    rows: int
    reference_rows: int
    dataset_drift: bool
    share_drifted: float
    drift_share_threshold: float
    drifted_columns: tuple[str, ...]
    columns: str
    quality: str = ""
    task: str = ""
    label_column: str = ""
    prediction_column: str = ""
    reference: str = ""
    config_hash: str = ""
    evidently_version: str = ""

    def quality_dict(self) -> dict[str, Any]:
        data = json.loads(self.quality) if self.quality else {}
        return data if isinstance(data, dict) else {}

    def columns_list(self) -> list[dict[str, Any]]:
        data = json.loads(self.columns or "[]")
        return data if isinstance(data, list) else []

    def metrics(self) -> dict[str, float]:
        """The scalar quality metrics (the confusion matrix and the task are left out)."""
        return metrics_of(self.quality)

    def figures(self) -> BatchFigures:
        return BatchFigures(
            self.batch_id, self.as_of, self.recorded_at, self.share_drifted, self.metrics()
        )

    def summary(self) -> dict[str, Any]:
        """The batch without its per-column results, for lists and JSON."""
        return {
            "batch_id": self.batch_id,
            "model": self.model,
            "version": self.version,
            "as_of": self.as_of.isoformat(),
            "rows": self.rows,
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "drifted_columns": list(self.drifted_columns),
            "quality": self.quality_dict() or None,
            "content_sha256": self.content_sha256,
        }


@dataclass(frozen=True)
class MonitoringFinding:
    """A threshold crossed by enough consecutive batches; open until a person closes it."""

    id: str
    model: str
    version: str
    check: str
    limit: str  # the bound as text, e.g. "accuracy >= 0.85"
    value: float  # the newest batch's value
    consecutive: int
    batch_id: str
    as_of: datetime
    opened_at: datetime
    opened_by: str
    state: str = OPEN
    closed_at: datetime | None = None
    closed_by: str = ""
    comment: str = ""

    @property
    def is_open(self) -> bool:
        return self.state == OPEN


def metrics_of(quality: str) -> dict[str, float]:
    """The finite scalar quality metrics in a batch's quality JSON text."""
    try:
        data = json.loads(quality) if quality else {}
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if k in QUALITY_METRICS and _finite(v)}
