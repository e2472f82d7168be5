"""Scoring one batch: the drift verdict against the version's reference profile, the quality
metrics when labels and predictions are there, and the row the governance database keeps.

Pure (frames in, dataclasses out). The drift verdict is `app.reports.verdict.compute_drift` on
a `ReferenceProfile`, so it is the Drift page's verdict (Evidently's DataDriftPreset parity)
without preparing the reference again for every batch.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from app.entities import ColumnDrift, DriftConfig, DriftResult
from app.errors import InvalidInput
from app.reports.cache import frame_digest
from app.reports.quality import quality as quality_of
from app.reports.verdict import ReferenceProfile, compute_drift
from governance.monitoring_rules import MonitoringBatch


@dataclass(frozen=True)
class ScoredBatch:
    """One batch's drift verdict and quality, with the SHA-256 of its content."""

    drift: DriftResult
    quality: dict[str, Any] | None
    content_sha256: str
    rows: int
    missing_columns: tuple[str, ...] = ()


def content_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 over the batch's column names, dtypes and values (what the audit log names)."""
    return frame_digest(frame, hashlib.sha256())


def batch_id(model: str, version: str, content: str) -> str:
    """The batch's id: the same content for the same version is the same batch."""
    key = json.dumps([model, version, content], separators=(",", ":"))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def score(
    profile: ReferenceProfile,
    current: pd.DataFrame,
    *,
    label: str = "",
    prediction: str = "",
    task: str | None = None,
    config: DriftConfig | None = None,
    content: str | None = None,
) -> ScoredBatch:
    """Drift on the columns the batch shares with the reference, and quality when labelled.

    `content` is the batch's `content_sha256` when the caller has it already.

    Raises:
        InvalidInput: A named label or prediction column is missing, only one of them is named,
            the batch shares no column with the reference, or a column cannot be compared.
    """
    if bool(label) != bool(prediction):
        raise InvalidInput("name both the label and the prediction column, or neither")
    for role, name in (("label", label), ("prediction", prediction)):
        if name and name not in current.columns:
            raise InvalidInput(f"the batch has no {role} column {name!r}")
    if current.empty:
        raise InvalidInput("the batch has no rows")
    reference = profile.frame
    shared = [str(c) for c in reference.columns if c in current.columns]
    if not shared:
        raise InvalidInput(
            "the batch shares no column with the version's reference data "
            f"(reference: {', '.join(map(str, list(reference.columns)[:8]))}...)"
        )
    missing = tuple(str(c) for c in reference.columns if c not in current.columns)
    drift = compute_drift(profile, current[shared], config or DriftConfig())
    measured = quality_of(current, label, prediction, task) if label else None
    digest = content or content_sha256(current)
    return ScoredBatch(drift, measured, digest, len(current), missing)


def _safe(value: Any) -> Any:
    """JSON-safe: non-finite floats become null (NaN is not JSON)."""
    if isinstance(value, dict):
        return {str(k): _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def canonical(value: Any) -> str:
    return json.dumps(_safe(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def to_record(
    model: str,
    version: str,
    scored: ScoredBatch,
    *,
    as_of: datetime,
    source: str,
    label: str = "",
    prediction: str = "",
    reference: str = "",
) -> MonitoringBatch:
    """The governance row of a scored batch (`recorded_at`/`recorded_by` are set on recording)."""
    drift = scored.drift
    return MonitoringBatch(
        batch_id=batch_id(model, version, scored.content_sha256),
        model=model,
        version=version,
        content_sha256=scored.content_sha256,
        as_of=as_of,
        recorded_at=as_of,
        recorded_by="",
        source=source[:2000],
        rows=scored.rows,
        reference_rows=drift.reference_rows,
        dataset_drift=drift.dataset_drift,
        share_drifted=float(drift.drift_share),
        drift_share_threshold=float(drift.drift_share_threshold),
        drifted_columns=drift.drifted_column_names,
        columns=canonical(drift.to_dict()["columns"]),
        quality=canonical(scored.quality) if scored.quality else "",
        task=str((scored.quality or {}).get("task", "")),
        label_column=label,
        prediction_column=prediction,
        reference=reference,
        config_hash=drift.config_hash,
        evidently_version=drift.evidently_version,
    )


def verdict_of(batch: MonitoringBatch) -> DriftResult:
    """The stored verdict of a batch as the Drift page's DriftResult."""
    columns = tuple(
        ColumnDrift(
            str(c["column"]),
            str(c["type"]),
            str(c["method"]),
            float(c["score"]) if c.get("score") is not None else math.nan,
            float(c["threshold"]),
            bool(c["drifted"]),
        )
        for c in batch.columns_list()
    )
    return DriftResult(
        dataset_drift=batch.dataset_drift,
        drift_share=batch.share_drifted,
        drifted_columns=len(batch.drifted_columns),
        columns=columns,
        evidently_version=batch.evidently_version,
        config_hash=batch.config_hash,
        drift_share_threshold=batch.drift_share_threshold,
        reference_rows=batch.reference_rows,
        current_rows=batch.rows,
    )


def run_view(batch: MonitoringBatch, *, already_recorded: bool = False) -> dict[str, Any]:
    """The `monitor run` JSON document of one batch (the keys are a contract)."""
    view: dict[str, Any] = {
        "batch_id": batch.batch_id,
        "model": batch.model,
        "version": batch.version,
        "as_of": batch.as_of.isoformat(),
        "rows": batch.rows,
        "dataset_drift": batch.dataset_drift,
        "share_drifted": batch.share_drifted,
        "drifted_columns": list(batch.drifted_columns),
        "scores": {
            str(c["column"]): {
                "type": c["type"],
                "method": c["method"],
                "score": c["score"],
                "threshold": c["threshold"],
                "drifted": c["drifted"],
            }
            for c in batch.columns_list()
        },
        "content_sha256": batch.content_sha256,
        "source": batch.source,
        "already_recorded": already_recorded,
    }
    if batch.quality:  # only with labels and predictions
        view["quality"] = batch.quality_dict()
    return view
