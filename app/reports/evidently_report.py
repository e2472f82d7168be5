"""Evidently's own report: the full HTML (drift + data summary) and its verdict for parity checks.

The only module that runs Evidently's presets; everything is imported inside functions because
`import evidently` takes several seconds.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pandas as pd

from app.entities import ColumnDrift, DriftConfig, DriftResult
from app.reports.columns import CAT, NUM, TEXT, drift_columns, infer_roles
from app.reports.verdict import config_hash, evidently_version, sample


def _definition(current: pd.DataFrame, config: DriftConfig) -> Any:
    """A DataDefinition that pins every column's type to what our verdict uses."""
    from evidently import DataDefinition

    columns = drift_columns(current, config.roles)
    chosen = {c for c, _ in columns}
    inferred = infer_roles(current)
    datetime = [c for c in config.roles.datetime if c in inferred]
    datetime += [
        c for c, k in inferred.items() if k == "datetime" and c not in chosen and c not in datetime
    ]
    reserved = chosen | set(datetime) | ({config.roles.id} if config.roles.id else set())
    return DataDefinition(
        id_column=config.roles.id,
        numerical_columns=[c for c, k in columns if k == NUM],
        categorical_columns=[c for c, k in columns if k == CAT],
        text_columns=[c for c, k in columns if k == TEXT],
        datetime_columns=datetime,
        unknown_columns=[c for c in inferred if c not in reserved],
        list_columns=[],
    )


def _preset(config: DriftConfig) -> Any:
    from evidently.presets import DataDriftPreset

    return DataDriftPreset(
        drift_share=config.drift_share,
        per_column_method=dict(config.per_column_method) or None,
        per_column_threshold=dict(config.per_column_threshold) or None,
    )


def run_preset(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig | None = None,
    *,
    with_summary: bool = False,
    infer: bool = False,
) -> Any:
    """Run DataDriftPreset (and optionally DataSummaryPreset) and return Evidently's snapshot.

    Args:
        infer: Let Evidently infer column types itself (the parity suite proves our inference);
            otherwise the types are pinned to our resolved column roles.
    """
    from evidently import Dataset, Report
    from evidently.presets import DataSummaryPreset

    config = config or DriftConfig()
    reference, _ = sample(reference, config.sample_rows)
    current, _ = sample(current, config.sample_rows)
    metrics = [_preset(config)] + ([DataSummaryPreset()] if with_summary else [])
    report = Report(metrics, include_tests=True)
    if infer:
        return report.run(current, reference)
    definition = _definition(current, config)
    return report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )


def verdict_from_snapshot(snapshot: Any, config: DriftConfig | None = None) -> DriftResult:
    """Evidently's verdict read back from its snapshot: method, score and test status per column."""
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    config = config or DriftConfig()
    data = json.loads(snapshot.json())
    failed = {t["metric_config"]["metric_id"] for t in data["tests"] if t["status"] == "FAIL"}
    definition = snapshot._context.data_definition
    columns: list[ColumnDrift] = []
    share = 0.0
    for metric in data["metrics"]:
        cfg = metric["config"]
        if cfg["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        if not cfg["type"].endswith(":ValueDrift"):
            continue
        column_type = definition.get_column_type(cfg["column"])
        method = cfg["method"]
        # Explicit methods are reported by registry name, defaults by display name.
        with contextlib.suppress(ValueError):
            method = get_registered_stattest(method, ColumnType(column_type.value)).display_name
        columns.append(
            ColumnDrift(
                column=cfg["column"],
                type=column_type.value,
                method=method,
                score=float(metric["value"]),
                threshold=float(cfg["threshold"]),
                drifted=metric["id"] in failed,
            )
        )
    return DriftResult(
        dataset_drift=bool(share >= config.drift_share),
        drift_share=share,
        drifted_columns=sum(1 for c in columns if c.drifted),
        columns=tuple(columns),
        evidently_version=evidently_version(),
        config_hash=config_hash(config),
        drift_share_threshold=config.drift_share,
        reference_rows=len(snapshot._context._input_data[1].as_dataframe()),
        current_rows=len(snapshot._context._input_data[0].as_dataframe()),
    )


def report_html(
    reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig | None = None
) -> str:
    """Evidently's full report (DataDriftPreset + DataSummaryPreset) as one self-contained page.

    Every report Countersign shows, caches or writes comes from here, made safe by
    `safe_html.safe_report_html`: the data sets are untrusted, and their column names and
    values are embedded in the page.
    """
    from app.reports.safe_html import safe_report_html

    snapshot = run_preset(reference, current, config, with_summary=True)
    return safe_report_html(snapshot.get_html_str(as_iframe=False))
