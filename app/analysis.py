"""Pure pandas/numpy analysis behind the comparison screens: no I/O, no Streamlit, no MLflow.

Inputs are our entities (or plain mappings); outputs are DataFrames the UI pieces draw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from app.entities import DatasetInfo, LoggedModelInfo, ModelVersionInfo, RunSummary
from app.signatures import schema_diff

DELTA_COLUMNS = [
    "metric",
    "label",
    "baseline",
    "value",
    "delta",
    "delta_pct",
    "verdict",
    "direction",
]


def is_lower_better(metric: str, lower_is_better: Iterable[str]) -> bool:
    """A metric is lower-is-better when its name, or its last `_`/`.`/`/` part, is listed.

    `val_rmse`, `test/log_loss` and `RMSE` all count as lower-is-better when `rmse` and
    `log_loss` are listed; `accuracy` does not.
    """
    known = {k.strip().lower() for k in lower_is_better}
    name = metric.strip().lower()
    if name in known:
        return True
    return any(name.endswith(sep + k) for k in known for sep in ("_", ".", "/", "-"))


def run_label(run: RunSummary) -> str:
    """A short, unique-enough label for a run: its name and the first 8 characters of its id."""
    return f"{run.run_name or 'run'} ({run.run_id[:8]})"


def side_by_side(columns: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per key, one column per entity (a run, a version); missing values stay empty.

    Args:
        columns: label -> {key: value}; the order of labels is kept.
    """
    keys = sorted({k for values in columns.values() for k in values})
    data = {label: [values.get(k) for k in keys] for label, values in columns.items()}
    frame = pd.DataFrame(data, index=pd.Index(keys, name="key"), dtype=object)
    return frame


def runs_side_by_side(runs: Sequence[RunSummary]) -> pd.DataFrame:
    """Params, metrics and user tags of several runs, one column per run.

    The index has two levels: section (`params`, `metrics`, `tags`) and key. MLflow's own
    `mlflow.*` tags are left out: they differ on every run and hide the real differences.
    """
    parts = []
    for section in ("params", "metrics", "tags"):
        cols: dict[str, Mapping[str, Any]] = {}
        for run in runs:
            values: Mapping[str, Any] = getattr(run, section)
            if section == "tags":
                values = {k: v for k, v in values.items() if not k.startswith("mlflow.")}
            cols[run_label(run)] = values
        frame = side_by_side(cols)
        frame.index = pd.MultiIndex.from_product(
            [[section], list(frame.index)], names=["section", "key"]
        )
        parts.append(frame)
    return pd.concat(parts) if parts else pd.DataFrame()


def _same(values: Sequence[Any]) -> bool:
    def norm(v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, (int, float, np.number)):
            return float(v)
        text = str(v)
        try:
            return float(text)
        except ValueError:
            return text

    normalised = [norm(v) for v in values]
    return all(v == normalised[0] for v in normalised[1:])


def differences_only(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the rows whose values are not all equal (a missing value counts as different).

    Numbers compare by value, so the param `"0.1"` equals the metric `0.1`.
    """
    if frame.empty or frame.shape[1] < 2:
        return frame
    mask = [not _same(list(row)) for row in frame.itertuples(index=False)]
    return frame.loc[mask]


def runs_wide(runs: Sequence[RunSummary]) -> pd.DataFrame:
    """One row per run: `run`, `params.*` and `metrics.*`, numbers as floats where they parse.

    This is what parallel coordinates and scatter plots draw.
    """
    rows = []
    for run in runs:
        row: dict[str, Any] = {"run": run_label(run), "run_id": run.run_id}
        row.update({f"params.{k}": v for k, v in run.params.items()})
        row.update({f"metrics.{k}": v for k, v in run.metrics.items()})
        rows.append(row)
    return numeric_params(pd.DataFrame(rows))


def numeric_params(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy where every `params.*` column whose values all parse as numbers holds floats."""
    frame = frame.copy()
    for col in frame.columns:
        if col.startswith("params."):
            numeric = pd.to_numeric(frame[col], errors="coerce")
            if numeric.notna().sum() == frame[col].notna().sum():
                frame[col] = numeric
    return frame


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """The `params.*`/`metrics.*` columns that hold numbers (what an axis can show)."""
    return [
        c
        for c in frame.columns
        if c.startswith(("params.", "metrics.")) and pd.api.types.is_numeric_dtype(frame[c])
    ]


def metric_deltas(
    baseline: Mapping[str, float],
    candidates: Mapping[str, Mapping[str, float]],
    lower_is_better: Iterable[str],
) -> pd.DataFrame:
    """Each candidate's metrics against the baseline, with the verdict by metric direction.

    Args:
        baseline: metric -> value of the reference (e.g. the champion).
        candidates: label -> {metric: value} of the versions under review.
        lower_is_better: metric names for which a smaller value is an improvement.

    Returns:
        One row per (metric, candidate): baseline, value, delta, delta_pct and a verdict of
        "better", "worse", "same" or "n/a" (missing on either side).
    """
    lower = tuple(lower_is_better)
    rows = []
    for label, metrics in candidates.items():
        for metric in sorted(set(baseline) | set(metrics)):
            base, value = baseline.get(metric), metrics.get(metric)
            low = is_lower_better(metric, lower)
            delta = pct = None
            verdict = "n/a"
            if base is not None and value is not None:
                delta = float(value) - float(base)
                pct = delta / abs(base) * 100 if base else None
                if math.isclose(delta, 0.0, abs_tol=1e-12):
                    verdict = "same"
                else:
                    verdict = "better" if (delta < 0) == low else "worse"
            rows.append(
                {
                    "metric": metric,
                    "direction": "lower is better" if low else "higher is better",
                    "baseline": base,
                    "label": label,
                    "value": value,
                    "delta": delta,
                    "delta_pct": pct,
                    "verdict": verdict,
                }
            )
    frame = pd.DataFrame(rows, columns=DELTA_COLUMNS)
    for col in ("baseline", "value", "delta", "delta_pct"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def metrics_across(labels_metrics: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Long frame `label`, `metric`, `value` in the given label order (for across-version lines)."""
    rows = [
        {"label": label, "metric": metric, "value": float(value)}
        for label, metrics in labels_metrics.items()
        for metric, value in sorted(metrics.items())
        if value is not None
    ]
    return pd.DataFrame(rows, columns=["label", "metric", "value"])


def history_for_plot(history: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Add `label` and `wall_time_s` (seconds since the run's first point) to a metric history.

    Args:
        history: columns run_id, key, value, step, timestamp (as the gateway returns it).
        labels: run_id -> label shown in the legend.
    """
    cols = ["run_id", "key", "value", "step", "timestamp", "label", "wall_time_s"]
    if history.empty:
        return pd.DataFrame(columns=cols)
    frame = history.copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["label"] = frame["run_id"].map(lambda r: labels.get(r, r[:8]))
    start = frame.groupby("run_id")["timestamp"].transform("min")
    frame["wall_time_s"] = (frame["timestamp"] - start).dt.total_seconds()
    return frame.sort_values(["key", "label", "step", "timestamp"]).reset_index(drop=True)[cols]


def runs_frame(runs: Sequence[RunSummary]) -> pd.DataFrame:
    """The runs table: fixed attribute columns, then `params.*`, `metrics.*` and user `tags.*`."""
    rows = []
    for run in runs:
        duration = None
        if run.start_time and run.end_time:
            duration = (run.end_time - run.start_time).total_seconds()
        row: dict[str, Any] = {
            "run_name": run.run_name,
            "run_id": run.run_id,
            "status": run.status,
            "user": run.user_id,
            "start_time": run.start_time,
            "duration_s": duration,
        }
        row.update({f"params.{k}": v for k, v in sorted(run.params.items())})
        row.update({f"metrics.{k}": v for k, v in sorted(run.metrics.items())})
        row.update(
            {f"tags.{k}": v for k, v in sorted(run.tags.items()) if not k.startswith("mlflow.")}
        )
        rows.append(row)
    fixed = ["run_name", "run_id", "status", "user", "start_time", "duration_s"]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=fixed)
    rest = sorted(c for c in frame.columns if c not in fixed)
    rest.sort(key=lambda c: ("params.", "metrics.", "tags.").index(c.split(".")[0] + "."))
    return frame[fixed + rest]


def _with_model(run: RunSummary, lm: LoggedModelInfo | None) -> RunSummary:
    if lm is None:
        return run
    metrics = dict(run.metrics) | lm.latest_metrics()
    return replace(run, metrics=metrics, params=dict(run.params) | dict(lm.params))


def shown_stage(stage: str) -> str:
    """MLflow says "None" for a version without a stage; show nothing instead."""
    return "" if stage in ("", "None") else stage


def version_label(version: ModelVersionInfo) -> str:
    """`v3` or, when the version holds aliases, `v3 (champion)`."""
    suffix = f" ({', '.join(version.aliases)})" if version.aliases else ""
    return f"v{version.version}{suffix}"


@dataclass(frozen=True)
class VersionReview:
    """Everything the version comparison screen shows; the baseline is the first version."""

    baseline: str
    labels: dict[str, str]  # version -> label
    run_labels: dict[str, str]  # source run id -> label
    summary: pd.DataFrame
    deltas: pd.DataFrame
    params: pd.DataFrame
    tags: pd.DataFrame
    schema: pd.DataFrame
    datasets: pd.DataFrame
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> metrics


def version_review(
    versions: Sequence[ModelVersionInfo],
    runs: Mapping[str, RunSummary],
    signatures: Mapping[str, Mapping[str, Any] | None],
    datasets: Mapping[str, Sequence[DatasetInfo]],
    lower_is_better: Iterable[str],
    *,
    logged: Mapping[str, LoggedModelInfo | None] | None = None,
) -> VersionReview:
    """Compare model versions against the first one (the baseline, e.g. the champion).

    Args:
        versions: The versions to compare, baseline first.
        runs: Source runs by run id (a version without a run has no params or metrics).
        signatures: version -> signature dict (or None).
        datasets: version -> data sets logged on its source run.
        lower_is_better: Metric names where smaller is an improvement.
        logged: version -> the MLflow 3 LoggedModel it was registered from. Its params and
            metrics overlay the run's: a run that logged several models holds only the last
            value of each metric, the model its own.
    """
    labels = {v.version: version_label(v) for v in versions}
    empty_run = RunSummary("", "", "", "", "", None, None)
    models = logged or {}
    run_of = {v.version: _with_model(runs.get(v.run_id, empty_run), models.get(v.version))
              for v in versions}  # fmt: skip
    metrics = {labels[v]: dict(r.metrics) for v, r in run_of.items()}
    base = labels[versions[0].version] if versions else ""
    summary = pd.DataFrame(
        [
            {
                "label": labels[v.version],
                "version": v.version,
                "aliases": ", ".join(v.aliases),
                "stage": shown_stage(v.stage),
                "status": v.status,
                "author": v.author,
                "created": v.creation_time,
                "logged_model": v.model_id,
                "source_run": v.run_id,
                "description": v.description,
            }
            for v in versions
        ]
    )
    dataset_rows = [
        {"label": labels[ver], "context": d.context, "name": d.name, "digest": d.digest}
        | {"source_type": d.source_type, "source": d.source}
        for ver, items in datasets.items()
        if ver in labels
        for d in items
    ] + [
        {"label": labels[ver], "context": "model metrics", "name": name, "digest": digest}
        | {"source_type": "", "source": f"metrics of logged model {lm.model_id}"}
        for ver, lm in models.items()
        if ver in labels and lm is not None
        for name, digest in sorted({(m.dataset_name, m.dataset_digest) for m in lm.metrics})
        if name
    ]
    run_labels: dict[str, str] = {}
    for v in versions:
        if v.run_id:  # several versions may come from one run
            run_labels[v.run_id] = " / ".join(
                filter(None, [run_labels.get(v.run_id), labels[v.version]])
            )
    return VersionReview(
        baseline=base,
        labels=labels,
        run_labels=run_labels,
        summary=summary,
        deltas=metric_deltas(
            metrics.get(base, {}), {k: m for k, m in metrics.items() if k != base}, lower_is_better
        ),
        params=side_by_side({labels[v]: r.params for v, r in run_of.items()}),
        tags=side_by_side({labels[v.version]: v.tags for v in versions}),
        schema=schema_diff({labels[v]: signatures.get(v) for v in labels}),
        datasets=pd.DataFrame(
            dataset_rows, columns=["label", "context", "name", "digest", "source_type", "source"]
        ),
        metrics=metrics,
    )
