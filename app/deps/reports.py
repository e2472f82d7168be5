"""Drift and feature-importance reports for the pages (app.monitoring over app.reports).

Evidently and the report modules are imported inside the functions: a page that never shows a
report never pays for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from app import bootstrap
from app.deps.core import cached as _cached, get_gateway, get_settings
from app.deps.reads import versions
from app.entities import DriftConfig, DriftResult, FeatureImportance
from app.errors import ArtifactsUnreachable

if TYPE_CHECKING:
    from app.monitoring import Monitoring
    from app.reports.jobs import JobState

# ---- drift and feature importance (app.monitoring over app.reports) ------------------------


@st.cache_resource(show_spinner=False)
def get_monitoring() -> Monitoring:
    """Drift and importance reports; owns the background pool for Evidently's full report."""
    return bootstrap.build_monitoring(get_settings(), get_gateway())


@_cached
def data_artifacts(run_id: str) -> tuple[str, ...]:
    """The CSV and Parquet data sets logged as artifacts of a run."""
    return get_monitoring().data_artifacts(run_id)


@_cached
def default_data_pair(run_id: str) -> tuple[str | None, str | None]:
    return get_monitoring().default_pair(run_id)


@_cached
def logged_data(run_id: str, path: str) -> pd.DataFrame:
    return get_monitoring().load_data(run_id, path)


@st.cache_data(show_spinner=False, max_entries=8)
def uploaded_data(data: bytes, name: str) -> pd.DataFrame:
    """An uploaded CSV or Parquet file, checked (size limit from Settings)."""
    from app.reports.uploads import read_table

    return read_table(data, name, bootstrap.data_limits(get_settings()))


def check_compatible(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    from app.reports.uploads import check_compatible as check

    check(reference, current)


def roles_table(current: pd.DataFrame) -> pd.DataFrame:
    from app.reports.columns import roles_table as table

    return table(current)


def drift_roles() -> tuple[str, ...]:
    from app.reports.columns import ROLES

    return ROLES


def drift_methods() -> tuple[str, ...]:
    from app.reports.stattests import METHOD_NAMES

    return METHOD_NAMES


def drift_config(table: pd.DataFrame, drift_share: float, sample_rows: int | None) -> DriftConfig:
    from app.reports.columns import config_from_table

    return config_from_table(table, drift_share, sample_rows)


def drift(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig) -> DriftResult:
    """The verdict (from the disk cache when these data and settings were seen before)."""
    return get_monitoring().drift(reference, current, config)


def start_drift_report(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig) -> str:
    return get_monitoring().start_report(reference, current, config)


def drift_report_state(key: str) -> JobState | None:
    return get_monitoring().report_state(key)


def distribution(reference: pd.Series, current: pd.Series, kind: str) -> pd.DataFrame:
    from app.reports.distributions import overlay

    return overlay(reference, current, kind)


def feature_importance(
    model: str, version: str, progress: Callable[[float, str], None] | None = None
) -> FeatureImportance:
    """Importances of one version (kept on disk per version once computed)."""
    return get_monitoring().feature_importance(model, version, progress=progress)


def importance_comparison(a: FeatureImportance, b: FeatureImportance, k: int) -> dict[str, Any]:
    """Side-by-side table, top-k overlap and the long form for grouped bars."""
    from app.reports import importance as imp

    shared, jaccard = imp.top_k_overlap(a, b, k)
    return {
        "table": imp.compare(a, b),
        "shared": shared,
        "jaccard": jaccard,
        "bars": imp.long_form([a, b], k),
    }


def drift_by_importance(result: DriftResult, importance: FeatureImportance, k: int) -> pd.DataFrame:
    from app.reports.importance import drift_by_importance as table

    return table(result, importance, k)


@_cached
def version_drift(model: str, version: str) -> DriftResult | None:
    """The version's logged current data against its logged reference (None if not logged)."""
    return get_monitoring().version_drift(model, version)


def logged_datasets(model: str) -> dict[str, tuple[str, str]]:
    """Every logged data set of the model's versions: "vN: path" -> (run_id, path)."""
    found: dict[str, tuple[str, str]] = {}
    for v in sorted(versions(model), key=lambda v: int(v.version)):
        try:
            paths = data_artifacts(v.run_id) if v.run_id else ()
        except ArtifactsUnreachable:
            continue  # another version's store being out of reach must not hide this one's
        found.update({f"v{v.version}: {path}": (v.run_id, path) for path in paths})
    return found


def importance_bars(items: list[FeatureImportance], k: int) -> pd.DataFrame:
    """feature / version / importance rows of the top-k features of any chosen version."""
    from app.reports.importance import long_form

    return long_form(items, k)


def drifted_important(result: DriftResult, importance: FeatureImportance, k: int) -> list[str]:
    from app.reports.importance import drifted_important as which

    return which(result, importance, k)
