"""Small, deterministic, JSON-able summaries of drift and importance for promotion evidence.

The governance EvidenceSource pins these into the evidence snapshot (canonical JSON): no NaN,
no frames, no HTML, floats rounded so the same report always gives the same text.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from app.entities import DriftResult, FeatureImportance
from app.reports.importance import drifted_important, top_k_overlap


def _num(value: float) -> float | None:
    return round(float(value), 12) if math.isfinite(float(value)) else None


def verdict_sha256(result: DriftResult) -> str:
    """SHA-256 of the verdict's canonical JSON: pins exactly which report the evidence used."""
    text = json.dumps(result.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def drift_summary(
    result: DriftResult, importance: FeatureImportance | None = None, top_k: int = 5
) -> dict[str, Any]:
    """The drift evidence: `share_drifted` is what the `max_drift_share` gate reads.

    Args:
        result: The drift verdict.
        importance: The version's importances, to name the drifted important features.
        top_k: How many of the most important features count as important.
    """
    summary: dict[str, Any] = {
        "share_drifted": _num(result.drift_share),
        "drift_share": _num(result.drift_share),
        "dataset_drift": result.dataset_drift,
        "drift_share_threshold": _num(result.drift_share_threshold),
        "drifted_columns": list(result.drifted_column_names),
        "n_columns": len(result.columns),
        "sampled": result.sampled,
        "evidently_version": result.evidently_version,
        "report_sha256": verdict_sha256(result),
    }
    if importance is not None:
        summary["drifted_important_features"] = drifted_important(result, importance, top_k)
        summary["importance_top_k"] = list(importance.top_k(top_k))
    return summary


def importance_summary(
    importance: FeatureImportance, previous: FeatureImportance | None = None, top_k: int = 5
) -> dict[str, Any]:
    """The importance evidence: the top features, and how they moved against `previous`."""
    top = [[name, _num(value)] for name, value in importance.ranked()[:top_k]]
    summary: dict[str, Any] = {
        "top": top,
        "importance_top_k": [name for name, _ in top],
        "source": importance.source,
        "method": importance.method,
    }
    if previous is not None:
        shared, jaccard = top_k_overlap(previous, importance, top_k)
        before = {n: i for i, (n, _) in enumerate(previous.ranked(), start=1)}
        now = {n: i for i, (n, _) in enumerate(importance.ranked(), start=1)}
        summary["compared_with_version"] = previous.version
        summary["top_k_overlap"] = _num(jaccard)
        summary["top_k_shared"] = shared
        summary["rank_shifts"] = {
            n: before[n] - now[n] for n in summary["importance_top_k"] if n in before
        }
    return summary
