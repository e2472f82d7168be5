"""Frozen dataclasses that cross module boundaries.

Only these (and pandas DataFrames) leave the gateways: never MLflow, Evidently or ORM objects.
They pickle cheaply, which keeps `st.cache_data` fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# The session cookie and the endpoints that set and clear it (served by app.web.session_cookie,
# posted to from the page by app.ui.handover; both under Streamlit's server.baseUrlPath).
SESSION_COOKIE = "countersign_session"
SESSION_ISSUE_PATH = "_countersign/session"
SESSION_END_PATH = "_countersign/session/end"
SESSION_HEADER = "X-Countersign-Session"


@dataclass(frozen=True)
class ExperimentInfo:
    experiment_id: str
    name: str
    lifecycle_stage: str
    artifact_location: str
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: datetime | None = None
    last_update_time: datetime | None = None


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    experiment_id: str
    run_name: str
    status: str
    user_id: str
    start_time: datetime | None
    end_time: datetime | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunsPage:
    """One server-side page of runs; `next_token` is None on the last page."""

    runs: tuple[RunSummary, ...]
    next_token: str | None


@dataclass(frozen=True)
class MetricPoint:
    run_id: str
    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True)
class DatasetInfo:
    """A data set logged with `mlflow.log_input` on a run."""

    name: str
    digest: str
    source_type: str
    source: str
    context: str  # the `mlflow.data.context` tag: training, evaluation, ...
    schema: str = ""
    profile: str = ""


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    run_id: str
    source: str
    status: str
    stage: str
    description: str
    aliases: tuple[str, ...]
    tags: dict[str, str]
    creation_time: datetime | None
    last_updated_time: datetime | None
    author: str  # the source run's `mlflow.user`; ModelVersion.user_id is empty in MLflow
    model_id: str = ""  # the MLflow 3 LoggedModel it was registered from ("" before MLflow 3)


@dataclass(frozen=True)
class LoggedModelMetric:
    """A metric logged on a LoggedModel: `mlflow.log_metrics(..., model_id=..., dataset=...)`."""

    key: str
    value: float
    step: int
    timestamp: datetime | None
    dataset_name: str  # "" when logged without a data set
    dataset_digest: str
    run_id: str  # the run that logged it ("" when unknown)


@dataclass(frozen=True)
class LoggedModelInfo:
    """An MLflow 3 LoggedModel: what a version was registered from, with or without a run."""

    model_id: str
    name: str
    experiment_id: str
    source_run_id: str  # "" for a model logged outside any run
    status: str
    model_type: str
    params: dict[str, str]
    metrics: tuple[LoggedModelMetric, ...]
    tags: dict[str, str]
    creation_time: datetime | None = None

    def latest_metrics(self) -> dict[str, float]:
        """Per metric key, the value logged last (by time, then step) across data sets."""
        ordered = sorted(
            self.metrics, key=lambda m: (m.timestamp or datetime.min.replace(tzinfo=UTC), m.step)
        )
        return {m.key: m.value for m in ordered}


@dataclass(frozen=True)
class RegisteredModelInfo:
    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, str]  # alias -> version
    latest_versions: tuple[ModelVersionInfo, ...]
    creation_time: datetime | None = None
    last_updated_time: datetime | None = None


@dataclass(frozen=True)
class StoreHealth:
    """Whether the MLflow store answers; `message` is one line for the user when it does not."""

    ok: bool
    tracking_uri: str  # without password
    registry_uri: str
    backend: str  # "sql", "http" or another URI scheme
    message: str = ""


@dataclass(frozen=True)
class StoreSchema:
    """One store's MLflow schema, as checked before any MLflow client opens it."""

    role: str  # "tracking" or "registry"
    uri: str  # without password
    kind: str  # URI scheme: sqlite, postgresql, file, http...
    revision: str | None  # the store's Alembic revision (SQL stores only)
    expected: str | None  # the installed MLflow's head revision (SQL stores only)
    state: str  # ok, older, unknown (newer than this MLflow), empty (not an MLflow store)
    message: str = ""  # what to do, when the state is not ok


@dataclass(frozen=True)
class StoreCounts:
    experiments: int
    runs: int
    models: int
    versions: int


@dataclass(frozen=True)
class ArtifactInfo:
    """One entry of a run's artifact tree; `path` is relative to the run's artifact root."""

    path: str
    is_dir: bool
    file_size: int | None = None


# --- Drift and feature importance (app/reports) ---------------------------------------------


@dataclass(frozen=True)
class ColumnRoles:
    """Column roles for a drift comparison; anything not named is inferred as Evidently does.

    `numerical`, `categorical` and `text` force a column's type; `id`, `datetime` and `ignored`
    columns are left out of the drift verdict; `target` and `prediction` are compared like
    features (label and prediction drift) with their inferred or forced type.
    """

    numerical: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    datetime: tuple[str, ...] = ()
    id: str | None = None
    target: str | None = None
    prediction: str | None = None
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftConfig:
    """What a drift verdict depends on besides the data; part of the cache key.

    `per_column_method` takes Evidently's stat-test names ("ks", "wasserstein", "psi", ...);
    `sample_rows` caps each frame (a random sample, seed 0) and marks the result as sampled.
    """

    drift_share: float = 0.5
    roles: ColumnRoles = field(default_factory=ColumnRoles)
    per_column_method: dict[str, str] = field(default_factory=dict)
    per_column_threshold: dict[str, float] = field(default_factory=dict)
    sample_rows: int | None = None


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    type: str  # Evidently's column type: "num", "cat" or "text"
    method: str  # Evidently's display name, e.g. "Wasserstein distance (normed)"
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    """The data-set verdict: `drift_share` is the share of drifted columns, `dataset_drift` is
    true when that share reaches `drift_share_threshold` (Evidently's rule)."""

    dataset_drift: bool
    drift_share: float
    drifted_columns: int
    columns: tuple[ColumnDrift, ...]
    evidently_version: str
    sampled: bool = False
    config_hash: str = ""
    drift_share_threshold: float = 0.5
    reference_rows: int = 0
    current_rows: int = 0

    @property
    def drifted_column_names(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.columns if c.drifted)

    def to_dict(self) -> dict[str, object]:
        """The CLI's JSON document (exact keys of the contract)."""
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "drifted_columns": self.drifted_columns,
            "columns": [
                {
                    "column": c.column,
                    "type": c.type,
                    "method": c.method,
                    "score": c.score,
                    "threshold": c.threshold,
                    "drifted": c.drifted,
                }
                for c in self.columns
            ],
            "evidently_version": self.evidently_version,
        }


@dataclass(frozen=True)
class FeatureImportance:
    """Importances of one model version; `source` is "artifact", "model" or "permutation"."""

    model_name: str
    version: str
    source: str
    importances: dict[str, float]
    method: str = ""

    def ranked(self) -> tuple[tuple[str, float], ...]:
        return tuple(sorted(self.importances.items(), key=lambda kv: (-abs(kv[1]), kv[0])))

    def top_k(self, k: int) -> tuple[str, ...]:
        return tuple(name for name, _ in self.ranked()[:k])


@dataclass(frozen=True)
class SignedInUser:
    """The signed-in person as the UI knows them; built by `app.identity`, kept in the session.

    `authenticated_at` is when the person last proved who they are (the password check, or the
    identity provider's `auth_time`/`iat`); `last_seen` moves on every interaction and drives the
    inactivity expiry. A local sign-in is a server-side browser session (`session_id`), checked
    again on every interaction, so that its end reaches every tab.
    """

    username: str
    roles: tuple[str, ...]
    method: str  # "local", "oidc" or "header"
    authenticated_at: datetime
    last_seen: datetime
    display_name: str = ""
    session_id: str = ""  # the server-side browser session (local sign-in), else ""


@dataclass(frozen=True)
class DemoAccount:
    """A demo user shown on the sign-in page in demo mode only (not a secret: demo data)."""

    username: str
    role: str
    password: str
    note: str = ""
    finds: str = ""  # what the account finds in the seeded demo history


# --- governance in the browser: read models over the audit log and the policy ---------------


@dataclass(frozen=True)
class ActivityEvent:
    """One audit-log entry as the feeds and the audit page show it (`summary` is plain text)."""

    seq: int
    ts: str  # as hashed in the chain: UTC, microseconds, trailing Z
    actor: str
    action: str
    object_type: str
    object_id: str
    model: str  # empty when the entry concerns no model (sign-ins, policy, verification)
    summary: str
    payload: str  # canonical JSON text
    entry_hash: str = ""


@dataclass(frozen=True)
class OutOfBandFlag:
    """A target's latest finding: MLflow differs from the ledger (`status` "open"), or such a
    move was put back on the governed holder (`status` "put_back", `ledger_version` restored)."""

    model: str
    target_kind: str
    target: str
    registry_versions: tuple[str, ...]
    ledger_version: str | None
    seq: int
    ts: str
    status: str = "open"
    detected_by: str = ""  # "reconcile", "mlflow_webhook", "put_back"


@dataclass(frozen=True)
class SigningEligibility:
    """Whether one user may sign one request now, and the reason in one sentence."""

    may_sign: bool
    may_approve: bool
    role: str | None
    reason: str
    already_voted: bool = False


@dataclass(frozen=True)
class EvidencePreview:
    """The evidence a request would capture now, under the rule that would apply to it."""

    data: dict[str, Any]
    hash: str
    policy_hash: str
    quorum: int
    approver_roles: tuple[str, ...]
    separation_of_duties: bool
    gates_passed: bool


@dataclass(frozen=True)
class Tenure:
    """One version holding one alias or stage from `since` to `until` (ISO UTC; None: unknown
    start, or holding it now), and why: request, out_of_band, put_back, before_countersign,
    not_yet_compared."""

    target: str
    target_kind: str
    version: str | None
    since: str | None
    until: str | None
    source: str
    request_id: str | None = None
    request_kind: str | None = None
    signers: tuple[str, ...] = ()
    seq: int | None = None


@dataclass(frozen=True)
class TargetHistory:
    """Every tenure of a model's aliases and stages, and the past holders a rollback may restore
    (versions the ledger recorded on that target)."""

    model: str
    known_since: str | None
    tenures: tuple[Tenure, ...]
    rollback_to: tuple[tuple[str, str], ...]  # (target, version)


# --- monitoring over time (app/batch_monitoring) ---------------------------------------------


@dataclass(frozen=True)
class MonitoringFlag:
    """An open monitoring finding: a threshold crossed by enough consecutive batches."""

    id: str
    model: str
    version: str
    check: str
    limit: str
    value: float
    consecutive: int
    batch_id: str
    as_of: datetime
    opened_at: datetime


@dataclass(frozen=True)
class BatchInfo:
    """One scored production batch as the pages show it (its verdict travels as DriftResult)."""

    batch_id: str
    model: str
    version: str
    as_of: datetime
    rows: int
    source: str
    content_sha256: str
    dataset_drift: bool
    share_drifted: float
    quality: dict[str, Any] = field(default_factory=dict)
