"""Cached MLflow reads (one gateway call each) and the comparisons derived from them with
`app.analysis`, so that pages stay thin and free of logic."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pandas as pd

from app import analysis, run_tree
from app.deps.core import cached as _cached, get_gateway, get_settings
from app.entities import (
    DatasetInfo,
    ExperimentInfo,
    LoggedModelInfo,
    ModelVersionInfo,
    RegisteredModelInfo,
    RunSummary,
)
from app.errors import ArtifactsUnreachable, InvalidQuery, NotFound

if TYPE_CHECKING:
    from app.entities import RunsPage

# ---- reads (one gateway call each) -------------------------------------------------------


@_cached
def counts() -> dict[str, int]:
    """Experiments, runs, registered models and versions in the store, by name."""
    found = get_gateway().counts()
    return dataclasses.asdict(found) if dataclasses.is_dataclass(found) else dict(found)


@_cached
def experiments() -> list[ExperimentInfo]:
    return list(get_gateway().list_experiments())


@_cached
def runs_page(
    experiment_ids: tuple[str, ...],
    filter_string: str,
    order_by: tuple[str, ...],
    page_size: int,
    page_token: str | None,
) -> RunsPage:
    """One server-side page of runs: never all runs to show the first page."""
    return get_gateway().search_runs_page(
        list(experiment_ids),
        filter_string=filter_string,
        order_by=list(order_by) or None,
        page_size=page_size,
        page_token=page_token,
    )


@_cached
def recent_runs(n: int) -> list[RunSummary]:
    return list(get_gateway().recent_runs(n))


@_cached
def runs(run_ids: tuple[str, ...]) -> list[RunSummary]:
    return list(get_gateway().get_runs(list(run_ids)))


def known_runs(run_ids: tuple[str, ...]) -> tuple[list[RunSummary], list[str]]:
    """The runs that exist (in order) and the ids that do not, e.g. from a pasted URL."""
    found: list[RunSummary] = []
    missing: list[str] = []
    for run_id in run_ids:
        try:
            found.extend(runs((run_id,)))
        except (NotFound, InvalidQuery):
            missing.append(run_id)
    return found, missing


@_cached
def metric_history(run_ids: tuple[str, ...], keys: tuple[str, ...]) -> pd.DataFrame:
    return get_gateway().metric_history(list(run_ids), list(keys))


@_cached
def run_datasets(run_id: str) -> list[DatasetInfo]:
    return list(get_gateway().run_datasets(run_id))


@_cached
def store_notice() -> str | None:
    """The schema message every page shows first, when a SQL store is at another revision."""
    return get_gateway().schema_notice()


@_cached
def store_notes() -> list[str]:
    """Notes about the store (e.g. experiment folders MLflow skips for lack of meta.yaml)."""
    return list(get_gateway().store_notes())


@_cached
def missing_dataset_inputs(run_id: str) -> int:
    """Data set inputs of the run whose data set record is gone (MLflow leaves them out)."""
    return get_gateway().missing_dataset_inputs(run_id)


@_cached
def child_run_counts(experiment_ids: tuple[str, ...]) -> dict[str, int]:
    """Parent run id -> number of its child runs in the experiments."""
    return get_gateway().child_run_counts(list(experiment_ids))


@_cached
def logged_model(model_id: str) -> LoggedModelInfo | None:
    """The LoggedModel a version was registered from; None when it is gone or there is none."""
    if not model_id:
        return None
    try:
        return get_gateway().logged_model(model_id)
    except NotFound:
        return None


@_cached
def registered_models() -> list[RegisteredModelInfo]:
    return list(get_gateway().list_registered_models())


@_cached
def versions(model: str) -> list[ModelVersionInfo]:
    """All versions of the model, each with the aliases it holds."""
    items = list(get_gateway().list_versions(model))
    if any(v.aliases for v in items):
        return items
    # MLflow's version search leaves aliases out; the registered model knows who holds which.
    held: dict[str, list[str]] = {}
    for alias, number in get_gateway().get_registered_model(model).aliases.items():
        held.setdefault(str(number), []).append(alias)
    return [dataclasses.replace(v, aliases=tuple(sorted(held.get(v.version, [])))) for v in items]


@_cached
def version_by_alias(model: str, alias: str) -> ModelVersionInfo | None:
    """The version holding `alias`, or None when nobody holds it."""
    try:
        return get_gateway().version_by_alias(model, alias)
    except NotFound:
        return None


@_cached
def _signature_read(model: str, version: str) -> tuple[dict[str, Any], str]:
    try:
        return dict(get_gateway().version_signature(model, version) or {}), ""
    except NotFound:
        # A lost or unreadable MLmodel must not take the whole review screen down.
        return {}, ""
    except ArtifactsUnreachable as exc:
        return {}, str(exc)


def version_signature(model: str, version: str) -> dict[str, Any]:
    """The version's signature; empty when none was logged or its MLmodel file is missing or
    not reachable from this server (`artifact_problem` says which)."""
    return _signature_read(model, version)[0]


def artifact_problem(model: str, version: str) -> str:
    """Why the version's model files cannot be read here ("artifacts of this version are not
    reachable from this server: URI"), or "" when they can."""
    return _signature_read(model, version)[1]


@_cached
def runs_table(experiment_ids: tuple[str, ...]) -> tuple[pd.DataFrame, str]:
    """Every run of the experiments with all params, metrics and tags, and the path that
    served it (SQL fast path, API, incremental API cache)."""
    table, path = get_gateway().runs_table(list(experiment_ids))
    return analysis.numeric_params(table), path


# ---- derived views (cached reads + app.analysis) -----------------------------------------


def run_comparison(run_ids: tuple[str, ...], differences: bool) -> pd.DataFrame:
    """Params, metrics and tags of the runs side by side, optionally only what differs."""
    frame = analysis.runs_side_by_side(runs(run_ids))
    return analysis.differences_only(frame) if differences else frame


def runs_wide(run_ids: tuple[str, ...]) -> pd.DataFrame:
    """One row per run with numeric params and metrics, for parallel coordinates and scatter."""
    return analysis.runs_wide(runs(run_ids))


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    return analysis.numeric_columns(frame)


def runs_frame(items: list[RunSummary]) -> pd.DataFrame:
    return analysis.runs_frame(items)


def runs_tree(items: list[RunSummary], child_counts: dict[str, int] | None = None) -> pd.DataFrame:
    """One page of runs with child runs under their parents (`child_counts`: collapsed view)."""
    return run_tree.nested(analysis.runs_frame(items), items, child_counts)


def top_level_filter(filter_string: str) -> str:
    """The filter narrowed to runs that have no parent run (the collapsed view)."""
    return run_tree.top_level_filter(filter_string)


def history(run_labels: dict[str, str], keys: tuple[str, ...]) -> pd.DataFrame:
    """Metric histories of the runs with legend labels and seconds since each run's start."""
    return _history(tuple(run_labels.items()), keys)


@_cached
def _history(labels: tuple[tuple[str, str], ...], keys: tuple[str, ...]) -> pd.DataFrame:
    run_labels = dict(labels)
    return analysis.history_for_plot(metric_history(tuple(run_labels), keys), run_labels)


@_cached
def version_review(model: str, chosen: tuple[str, ...]) -> analysis.VersionReview:
    """The comparison of `chosen` versions of `model`; the first one is the baseline."""
    by_number = {v.version: v for v in versions(model)}
    missing = [v for v in chosen if v not in by_number]
    if missing:
        raise NotFound(f"Model {model!r} has no version {', '.join(missing)}")
    selected = [by_number[v] for v in chosen]
    logged = {v.version: logged_model(v.model_id) for v in selected}
    run_of = {v.version: v.run_id or _source_run(logged[v.version]) for v in selected}
    run_ids = tuple(dict.fromkeys(r for r in run_of.values() if r))
    source_runs = {r.run_id: r for r in known_runs(run_ids)[0]} if run_ids else {}
    return analysis.version_review(
        [dataclasses.replace(v, run_id=run_of[v.version]) for v in selected],
        source_runs,
        {v.version: version_signature(model, v.version) for v in selected},
        {v.version: run_datasets(run_of[v.version]) if run_of[v.version] else [] for v in selected},
        get_settings().lower_is_better,
        logged=logged,
    )


def _source_run(lm: LoggedModelInfo | None) -> str:
    return lm.source_run_id if lm is not None else ""


@_cached
def metrics_across_versions(model: str) -> pd.DataFrame:
    """Every version's source-run metrics, in version order (label, metric, value)."""
    items = sorted(versions(model), key=lambda v: int(v.version))
    run_ids = tuple(dict.fromkeys(v.run_id for v in items if v.run_id))
    by_run = {r.run_id: r for r in known_runs(run_ids)[0]} if run_ids else {}
    out: dict[str, dict[str, float]] = {}
    for v in items:
        metrics = dict(by_run[v.run_id].metrics) if v.run_id in by_run else {}
        lm = logged_model(v.model_id)
        out[f"v{v.version}"] = metrics | (lm.latest_metrics() if lm is not None else {})
    return analysis.metrics_across(out)


def differences_only(frame: pd.DataFrame) -> pd.DataFrame:
    return analysis.differences_only(frame)
