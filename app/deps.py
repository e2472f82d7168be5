"""The only place with Streamlit caches: what bootstrap builds, and cached reads keyed by query.

Reads are cached with `st.cache_data` for `settings.cache_ttl_s` seconds, keyed by their
arguments and by the store they read, so a different tracking URI never sees stale entries.
The cache wrappers are made on first use because the TTL comes from Settings, and nothing may
read the environment at import time. Derived views (comparisons) call `app.analysis` on the
cached reads so that pages stay thin and free of logic.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import pandas as pd
import streamlit as st

from app import analysis, bootstrap
from app.entities import (
    ActivityEvent,
    DatasetInfo,
    DriftConfig,
    DriftResult,
    EvidencePreview,
    ExperimentInfo,
    FeatureImportance,
    ModelVersionInfo,
    OutOfBandFlag,
    RegisteredModelInfo,
    RunSummary,
    SigningEligibility,
)
from app.errors import InvalidQuery, NotFound, UserFacingError
from app.settings import Settings, SettingsError
from governance.domain import REAUTH_OIDC_RECENT_LOGIN, RequestDetails

if TYPE_CHECKING:
    from app.entities import RunsPage
    from app.facade import GovernanceFacade
    from app.identity import IdentityService
    from app.mlflow_gateway import MlflowGateway
    from app.monitoring import Monitoring
    from app.reports.jobs import JobState

# What a page shows as one line with st.error instead of a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (UserFacingError, SettingsError)

P = ParamSpec("P")
R = TypeVar("R")
_WRAPPERS: dict[str, Callable[..., Any]] = {}


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    """The settings of this process (environment plus .streamlit/secrets.toml)."""
    return Settings.from_env()


@st.cache_resource(show_spinner="Connecting to the MLflow store...")
def get_gateway() -> MlflowGateway:
    """One MLflow gateway per process, built by the composition root."""
    return bootstrap.build_gateway(get_settings())


@st.cache_resource(show_spinner=False)
def get_governance() -> GovernanceFacade:
    """One governance facade per process (the same one the CLI builds per command)."""
    return bootstrap.build_governance(get_settings())


@st.cache_resource(show_spinner=False)
def get_identity() -> IdentityService:
    """Sign-in for this process: the configured mode over the governance accounts."""
    from app.identity import build_identity

    return build_identity(get_settings(), get_governance())


def clear_caches() -> None:
    """Forget every cached read and resource (after a write, or between tests)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    _WRAPPERS.clear()


def _store_key() -> str:
    settings = get_settings()
    return f"{settings.tracking_uri}|{settings.registry_uri}"


def _cached(fn: Callable[P, R]) -> Callable[P, R]:
    """`st.cache_data` with the TTL from Settings, keyed by the store and the arguments."""

    def keyed(store: str, *args: Any) -> Any:
        del store  # part of the cache key only
        return fn(*args)  # type: ignore[call-arg]

    keyed.__qualname__ = keyed.__name__ = f"cached_{fn.__name__}"

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        inner = _WRAPPERS.get(fn.__name__)
        if inner is None:
            ttl = get_settings().cache_ttl_s
            inner = st.cache_data(ttl=ttl, show_spinner="Reading from MLflow...")(keyed)
            _WRAPPERS[fn.__name__] = inner
        return inner(_store_key(), *args)  # type: ignore[no-any-return]

    return wrapper


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
def version_signature(model: str, version: str) -> dict[str, Any]:
    """The version's signature; empty when none was logged or its MLmodel file is missing."""
    try:
        return dict(get_gateway().version_signature(model, version) or {})
    except NotFound:
        # A lost or unreadable MLmodel must not take the whole review screen down.
        return {}


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


def history(run_labels: dict[str, str], keys: tuple[str, ...]) -> pd.DataFrame:
    """Metric histories of the runs with legend labels and seconds since each run's start."""
    frame = metric_history(tuple(run_labels), keys)
    return analysis.history_for_plot(frame, run_labels)


def version_review(model: str, chosen: tuple[str, ...]) -> analysis.VersionReview:
    """The comparison of `chosen` versions of `model`; the first one is the baseline."""
    by_number = {v.version: v for v in versions(model)}
    missing = [v for v in chosen if v not in by_number]
    if missing:
        raise NotFound(f"Model {model!r} has no version {', '.join(missing)}")
    selected = [by_number[v] for v in chosen]
    run_ids = tuple(v.run_id for v in selected if v.run_id)
    source_runs = {r.run_id: r for r in runs(run_ids)} if run_ids else {}
    return analysis.version_review(
        selected,
        source_runs,
        {v.version: version_signature(model, v.version) for v in selected},
        {v.version: run_datasets(v.run_id) if v.run_id else [] for v in selected},
        get_settings().lower_is_better,
    )


def metrics_across_versions(model: str) -> pd.DataFrame:
    """Every version's source-run metrics, in version order (label, metric, value)."""
    items = sorted(versions(model), key=lambda v: int(v.version))
    run_ids = tuple(v.run_id for v in items if v.run_id)
    by_run = {r.run_id: r for r in runs(run_ids)} if run_ids else {}
    return analysis.metrics_across(
        {
            f"v{v.version}": dict(by_run[v.run_id].metrics) if v.run_id in by_run else {}
            for v in items
        }
    )


def differences_only(frame: pd.DataFrame) -> pd.DataFrame:
    return analysis.differences_only(frame)


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

    return read_table(data, name, get_settings().upload_max_mb)


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


def version_drift(model: str, version: str) -> DriftResult | None:
    """The version's logged current data against its logged reference (None if not logged)."""
    return get_monitoring().version_drift(model, version)


def logged_datasets(model: str) -> dict[str, tuple[str, str]]:
    """Every logged data set of the model's versions: "vN: path" -> (run_id, path)."""
    items = sorted(versions(model), key=lambda v: int(v.version))
    return {
        f"v{v.version}: {path}": (v.run_id, path)
        for v in items
        if v.run_id
        for path in data_artifacts(v.run_id)
    }


def importance_bars(items: list[FeatureImportance], k: int) -> pd.DataFrame:
    """feature / version / importance rows of the top-k features of any chosen version."""
    from app.reports.importance import long_form

    return long_form(items, k)


def drifted_important(result: DriftResult, importance: FeatureImportance, k: int) -> list[str]:
    from app.reports.importance import drifted_important as which

    return which(result, importance, k)


# ---- governance reads (over the facade built once in bootstrap) --------------------------


def after_write() -> None:
    """Forget cached reads after a mutation: an executed promotion moves aliases and stages."""
    st.cache_data.clear()


def evidence_preview(actor: str, model: str, version: str, target: str) -> EvidencePreview:
    """The evidence a request for (model, version, target) would capture now; records nothing."""
    from app import governance_views

    return governance_views.preview_evidence(get_governance(), actor, model, version, target)


def request_details(actor: str, request_id: str) -> RequestDetails:
    """One request with its votes, decision, executions and quorum progress."""
    return get_governance().get_request(actor, request_id)


def requests(actor: str, *, state: str | None = None, model: str | None = None) -> list[Any]:
    """Promotion requests newest first (PromotionRequest), optionally filtered."""
    return list(get_governance().list_requests(actor, state=state, model=model))


def signing_eligibility(
    actor: str, roles: tuple[str, ...], details: RequestDetails
) -> SigningEligibility:
    """Whether the user may sign this request now, and why."""
    from app import governance_views

    return governance_views.eligibility(get_governance(), actor, roles, details)


def signing_inbox(
    actor: str, roles: tuple[str, ...]
) -> list[tuple[RequestDetails, SigningEligibility]]:
    """The pending requests the user may sign, oldest first."""
    from app import governance_views

    return governance_views.inbox(get_governance(), actor, roles)


def audit_events(actor: str, **filters: Any) -> list[ActivityEvent]:
    """Audit entries newest first; filters: model, who, action, since, until, limit, feed_only."""
    from app import governance_views

    return governance_views.audit_events(get_governance(), actor, **filters)


def activity(actor: str, model: str = "", limit: int = 30) -> list[ActivityEvent]:
    """The activity feed (requests, votes, executions, registry findings), newest first."""
    return audit_events(actor, model=model, limit=limit, feed_only=True)


def out_of_band(actor: str, model: str = "") -> list[OutOfBandFlag]:
    """Open out-of-band changes found by reconcile."""
    from app import governance_views

    return governance_views.out_of_band(get_governance(), actor, model)


def policy_hash() -> str:
    """The hash of the policy in force."""
    return get_governance().policy.hash


def oidc_reauthentication() -> Any:
    """The re-authentication an OIDC signer presents (the identity layer checked its age)."""
    from governance.service import Reauthentication

    return Reauthentication(REAUTH_OIDC_RECENT_LOGIN)


# The audit page and the out-of-band checks show the verification; a rerun, another tab or
# another auditor within this window reuses it instead of re-reading the whole chain.
VERIFY_TTL_S = 30


@st.cache_data(ttl=VERIFY_TTL_S, show_spinner=False)
def verify_audit(actor: str) -> Any:
    """Recompute the audit chain (recorded as an audit_verified event); a VerifyResult.

    Cached per actor for VERIFY_TTL_S seconds (and dropped by `after_write`).
    """
    return get_governance().verify_audit(actor)


def audit_bundle(actor: str, models: tuple[str, ...] = (), request_id: str = "") -> bytes:
    """The signed, offline-verifiable audit bundle (zip) for `actor` (admin or auditor).

    Raises:
        SigningKeyError: COUNTERSIGN_SIGNING_KEY is unset or unusable.
        NotAllowed: The actor may not export.
    """
    from app.export.api import audit_bundle_for

    return audit_bundle_for(
        get_settings(), get_governance(), actor, models=models, request_id=request_id or None
    )


def policy_signer_roles() -> frozenset[str]:
    """The approver roles the active policy names (custom ones such as `risk` may sign)."""
    return get_governance().policy.signer_roles()
