"""Monitoring over time for the pages: timelines, batches and findings (app.batch_monitoring).

Reads are cached briefly per (actor, model, versions); `after_write` (and recording or closing
here) clears them. The frames come from `app.batch_monitoring.timeline`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from app import bootstrap
from app.deps.core import get_governance, get_settings
from app.deps.governance import governed
from app.deps.reports import get_monitoring
from app.entities import BatchInfo, DriftResult, MonitoringFlag

if TYPE_CHECKING:
    from app.batch_monitoring.service import BatchMonitoring

VIEW_TTL_S = 30


@st.cache_resource(show_spinner=False)
def get_batch_monitoring() -> BatchMonitoring:
    """Batches over time for this process (reference profiles are kept per version)."""
    return bootstrap.build_batch_monitoring(get_settings(), get_governance(), get_monitoring())


def _flag(f: Any) -> MonitoringFlag:
    return MonitoringFlag(
        f.id, f.model, f.version, f.check, f.limit, f.value, f.consecutive, f.batch_id,
        f.as_of, f.opened_at,
    )  # fmt: skip


@governed  # findings open and close with an audit entry
def monitoring_flags(actor: str, model: str = "") -> list[MonitoringFlag]:
    """Open monitoring findings (thresholds crossed), newest first."""
    return [_flag(f) for f in get_batch_monitoring().findings(actor, model)]


def close_monitoring_finding(actor: str, finding_id: str, comment: str) -> str:
    """Close a finding with a comment (a person; audited); returns what happened."""
    result = get_batch_monitoring().close_finding(actor, finding_id, comment)
    st.cache_data.clear()
    if result.closed_now:
        return f"Finding {finding_id} closed."
    return f"Finding {finding_id} was already closed by {result.finding.closed_by}."


def finding_closer(actor: str, allowed: bool) -> Callable[[str, str], str] | None:
    """The close form's one call for `actor`, or None when the person may not close findings."""
    if not allowed:
        return None
    return lambda finding_id, comment: close_monitoring_finding(actor, finding_id, comment)


@st.cache_data(ttl=VIEW_TTL_S, show_spinner="Reading the monitoring timeline...")
def monitoring_view(actor: str, model: str, versions: tuple[str, ...]) -> dict[str, Any]:
    """The timeline of several versions (overlaid), each version's heatmap and batch list."""
    from app.batch_monitoring import timeline

    service = get_batch_monitoring()
    history = {v: service.history(actor, model, v) for v in versions}
    return {
        "timeline": timeline.timeline(history),
        "heatmaps": {v: timeline.heatmap(b) for v, b in history.items()},
        "tables": {v: timeline.batches_table(b) for v, b in history.items()},
        "batches": {
            v: [(b.batch_id, f"{b.as_of:%Y-%m-%d %H:%M} · {b.batch_id}") for b in reversed(items)]
            for v, items in history.items()
        },
        "baselines": {v: _baseline(service, model, v, items) for v, items in history.items()},
    }


def _baseline(service: BatchMonitoring, model: str, version: str, items: Any) -> dict[str, float]:
    labelled = [b for b in items if b.label_column and b.prediction_column]
    if not labelled:
        return {}
    last = labelled[-1]
    try:
        found = service.baseline(
            model, version, last.label_column, last.prediction_column, last.task
        )
    except Exception:  # a baseline is a nicety: the timeline stands without it
        return {}
    metrics = {k: v for k, v in (found or {}).items() if isinstance(v, float)}
    return metrics


def monitoring_metrics(frame: pd.DataFrame) -> list[str]:
    """The metrics a timeline holds, the drift share first."""
    from app.batch_monitoring.timeline import metrics_in

    return metrics_in(frame)


def monitoring_thresholds(model: str) -> dict[str, Any]:
    """The policy's lines per metric ({metric: [("min"|"max", value)]}) and `consecutive`."""
    from app.batch_monitoring.timeline import threshold_lines
    from governance.monitoring_rules import DRIFT_SHARE, QUALITY_METRICS

    found = get_batch_monitoring().thresholds(model)
    lines = {m: threshold_lines(found, m) for m in (DRIFT_SHARE, *QUALITY_METRICS)}
    return {
        "lines": {m: v for m, v in lines.items() if v},
        "consecutive": found.consecutive if found else None,
        "pattern": found.pattern if found else None,
    }


def monitoring_batch(actor: str, batch_id: str) -> tuple[BatchInfo, DriftResult]:
    """One stored batch and its stored verdict."""
    from app.batch_monitoring.scoring import verdict_of

    b = get_batch_monitoring().batch(actor, batch_id)
    info = BatchInfo(
        b.batch_id, b.model, b.version, b.as_of, b.rows, b.source, b.content_sha256,
        b.dataset_drift, b.share_drifted, b.quality_dict(),
    )  # fmt: skip
    return info, verdict_of(b)


def monitoring_batch_frames(actor: str, batch_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The version's reference and the batch's data read again (checked by content hash).

    Raises:
        InvalidInput: The batch's source cannot be read any more or has changed.
    """
    service = get_batch_monitoring()
    batch = service.batch(actor, batch_id)
    reference = service.reference_frame(batch.model, batch.version)
    current = service.batch_data(batch)
    shared = [c for c in reference.columns if c in current.columns]
    return reference[shared], current[shared]


def record_uploaded_batch(
    actor: str,
    model: str,
    version: str,
    data: bytes,
    name: str,
    *,
    as_of: datetime | None,
    label: str = "",
    prediction: str = "",
) -> dict[str, Any]:
    """Score an uploaded CSV or Parquet file as a batch of the version (see `run_upload`)."""
    outcome = get_batch_monitoring().run_upload(
        actor, model, version, data, name, as_of=as_of, label=label, prediction=prediction
    )
    st.cache_data.clear()
    return outcome.view()
