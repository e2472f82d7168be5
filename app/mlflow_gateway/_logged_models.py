"""MLflow 3 LoggedModels: which one a version came from, and our entity for it.

A version registered from a LoggedModel has the source `models:/m-<id>`; MLflow fills
`ModelVersion.model_id` only on some stores (file stores and servers do, SQLite does not), so
the source is read as well. The LoggedModel carries its own params and metrics (each metric with
the run that logged it and, when given, its data set); it may have no source run at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.entities import DatasetInfo, LoggedModelInfo, LoggedModelMetric
from app.mlflow_gateway._support import model_id_of, ms_to_dt

__all__ = ["model_id_of", "to_logged_model"]

MAX_METRICS = 10_000  # a model with more metric points than this is cut, not read forever


def to_logged_model(lm: Any) -> LoggedModelInfo:
    metrics = tuple(
        LoggedModelMetric(
            key=str(m.key),
            value=float(m.value),
            step=int(m.step or 0),
            timestamp=ms_to_dt(m.timestamp),
            dataset_name=str(m.dataset_name or ""),
            dataset_digest=str(m.dataset_digest or ""),
            run_id=str(m.run_id or ""),
        )
        for m in list(lm.metrics or [])[:MAX_METRICS]
    )
    status = getattr(lm.status, "name", None) or str(lm.status or "")
    return LoggedModelInfo(
        model_id=str(lm.model_id),
        name=str(lm.name or ""),
        experiment_id=str(lm.experiment_id or ""),
        source_run_id=str(lm.source_run_id or ""),
        status=status,
        model_type=str(lm.model_type or ""),
        params={str(k): str(v) for k, v in (lm.params or {}).items()},
        metrics=metrics,
        tags={str(k): str(v) for k, v in (lm.tags or {}).items()},
        creation_time=ms_to_dt(lm.creation_timestamp),
    )


# What the evidence snapshot keeps of a lineage: enough to identify every part, bounded in size.
EVIDENCE_METRICS = 200
EVIDENCE_DATASETS = 50


def lineage_data(lm: LoggedModelInfo | None, datasets: Sequence[DatasetInfo]) -> dict[str, Any]:
    """The version's lineage as JSON-ready data for the evidence: logged model -> run -> data.

    Sorted and bounded, so the same lineage always gives the same evidence hash (in the app and
    in the CLI alike: both capture evidence through the registry adapter).
    """
    logged = None
    if lm is not None:
        metrics = sorted(
            (
                {
                    "key": m.key,
                    "value": m.value,
                    "step": m.step,
                    "dataset_name": m.dataset_name,
                    "dataset_digest": m.dataset_digest,
                    "run_id": m.run_id,
                }
                for m in lm.metrics
            ),
            key=lambda m: (
                m["key"],
                m["dataset_name"],
                m["dataset_digest"],
                m["step"],
                m["run_id"],
            ),
        )
        logged = {
            "model_id": lm.model_id,
            "name": lm.name,
            "source_run_id": lm.source_run_id,
            "status": lm.status,
            "model_type": lm.model_type,
            "params": dict(sorted(lm.params.items())),
            "metrics": metrics[:EVIDENCE_METRICS],
            "metrics_total": len(metrics),
        }
    sets = sorted(
        (
            {"name": d.name, "digest": d.digest, "context": d.context}
            | {"source_type": d.source_type, "source": d.source}
            for d in datasets
        ),
        key=lambda d: (d["context"], d["name"], d["digest"]),
    )
    return {"logged_model": logged, "datasets": sets[:EVIDENCE_DATASETS]}
