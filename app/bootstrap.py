"""The composition root: plain Python that turns Settings into engines, gateways and facades.

Nothing here runs at import time; `app.deps` caches what these functions build for the pages,
and the CLI calls them once per command.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING

from app.settings import Settings

if TYPE_CHECKING:
    from app.batch_monitoring.service import BatchMonitoring
    from app.facade import GovernanceFacade
    from app.mlflow_gateway import MlflowGateway
    from app.monitoring import Monitoring, VersionEvidence
    from app.reports.limits import DataLimits
    from governance.ports import Clock, EvidenceSource, ModelRegistry, PasswordHasher

# Argon2id at the memory and time cost of the first of OWASP's recommended settings (m = 19 MiB,
# t = 2), computed in two lanes. An attacker's cost is set by memory times passes, the same for any
# number of lanes; two lanes let the server use two cores, so the password check a sign-off repeats
# takes about 18 ms instead of 27 ms here (about 20% more CPU in all). Hashes made with other
# parameters are upgraded at the user's next successful sign-in.
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19_456
ARGON2_PARALLELISM = 2


def harden_process() -> None:
    """Start-up of the app and the CLI: MLflow may never unpickle a model in this process.

    The process holds the governance database URL, the signing key path and the cookie secret;
    a model file is code written by whoever logged it. MLflow reads the switch at load time, so
    setting it here (and again in the gateway) covers every later load attempt.
    """
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"


def data_limits(settings: Settings, *, upload: bool = True) -> DataLimits:
    """The bounds on a data set: an upload (COUNTERSIGN_UPLOAD_MAX_MB) or a logged artifact
    (COUNTERSIGN_ARTIFACT_MAX_MB), and the rows, columns and decoded size of either."""
    from app.reports.limits import DataLimits

    return DataLimits(
        max_mb=settings.upload_max_mb if upload else settings.artifact_max_mb,
        max_rows=settings.data_max_rows,
        max_columns=settings.data_max_columns,
        max_decoded_mb=settings.data_max_decoded_mb,
        file_setting="COUNTERSIGN_UPLOAD_MAX_MB" if upload else "COUNTERSIGN_ARTIFACT_MAX_MB",
    )


def password_hasher() -> PasswordHasher:
    """The production argon2id hasher with the parameters above."""
    from governance.passwords import Argon2PasswordHasher

    return Argon2PasswordHasher(
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
    )


def upgrade_governance_db(settings: Settings) -> tuple[str | None, str]:
    """Run the Alembic migrations on COUNTERSIGN_DB_URL; returns (revision before, after)."""
    from governance.db import current_revision, make_engine, upgrade

    engine = make_engine(settings.db_url)
    try:
        before = current_revision(engine)
        return before, upgrade(engine)
    finally:
        engine.dispose()


def build_governance(
    settings: Settings,
    *,
    registry: ModelRegistry | None = None,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
    evidence: EvidenceSource | None = None,
    actor: str = "system:cli",
) -> GovernanceFacade:
    """Wire the governance workflow: engine, schema check, policy, hasher, clock, registry.

    Args:
        settings: Where the database, the policy and MLflow are.
        registry: The ModelRegistry port; defaults to MLflow (imported on first use).
        clock, hasher: Overrides for tests and benchmarks.
        evidence: The drift and importance EvidenceSource. By default, when the registry is
            MLflow's, the one from `build_evidence_source` (lazy: nothing heavy is imported until
            a summary is needed), so that every entry point (pages, CLI, exports) captures the
            same evidence and one entry point's request is never stale to another. A test that
            passes its own registry passes its own evidence source, if any.
        actor: Who is recorded as loading the policy.

    Raises:
        SchemaOutOfDate: The database is behind the code (run `python -m app.cli db upgrade`).
        PolicyError: The policy file is invalid (the message names the file and key).
        DatabaseUnavailable: The database cannot be reached.
    """
    from app.facade import GovernanceFacade, LazyRegistry, SystemClock
    from governance import service
    from governance.db import make_engine
    from governance.monitoring_store import SqlMonitoringSource
    from governance.unit_of_work import SqlStore

    if registry is None:

        def build_registry() -> ModelRegistry:
            from app.mlflow_gateway import MlflowModelRegistry

            return MlflowModelRegistry(settings)

        registry = LazyRegistry(build_registry)
        if evidence is None:
            evidence = build_evidence_source(settings)
    clock = clock or SystemClock()
    store = SqlStore(make_engine(settings.db_url))
    try:
        store.check_schema()
        policy = service.load_policy(store.unit_of_work(), clock, settings.policy_path, actor)
    except BaseException:
        store.dispose()
        raise
    context = service.Context(
        registry=registry,
        clock=clock,
        policy=policy,
        hasher=hasher or password_hasher(),
        evidence=evidence,
        monitoring=SqlMonitoringSource(store.engine),
        lockout_attempts=settings.lockout_attempts,
        lockout_duration=timedelta(minutes=settings.lockout_minutes),
        reset_notice_period=timedelta(days=settings.reset_notice_days),
        session_idle=timedelta(minutes=settings.session_timeout_minutes),
        session_lifetime=timedelta(minutes=settings.session_absolute_minutes),
    )
    return GovernanceFacade(store=store, context=context)


def build_gateway(settings: Settings) -> MlflowGateway:
    """The read (and registry) gateway over the configured MLflow tracking and registry stores.

    Args:
        settings: The application settings (tracking and registry URIs, data dir).

    Returns:
        A gateway that returns our entities, never MLflow objects.
    """
    from app.mlflow_gateway import MlflowGateway

    return MlflowGateway(settings)


def build_monitoring(settings: Settings, gateway: MlflowGateway) -> Monitoring:
    """Drift and feature-importance reports for model versions (also the EvidenceSource).

    Args:
        settings: The application settings (cache dir, upload limit).
        gateway: The MLflow gateway that reads artifacts and versions.
    """
    from app.monitoring import Monitoring
    from app.reports.jobs import ReportJobs

    return Monitoring(settings, gateway, ReportJobs(workers=1, max_jobs=settings.report_jobs_max))


def build_evidence_source(settings: Settings) -> VersionEvidence:
    """The EvidenceSource for promotion requests: drift and importance summaries per version.

    Lazy (MLflow is imported on the first summary) and tolerant (None when no report can be
    made). `build_governance` wires it by default, so the UI and the CLI capture the same
    evidence and their evidence hashes agree.
    """
    from app.monitoring import VersionEvidence

    return VersionEvidence(lambda: build_monitoring(settings, build_gateway(settings)))


def build_batch_monitoring(
    settings: Settings,
    governance: GovernanceFacade,
    monitoring: Monitoring | None = None,
) -> BatchMonitoring:
    """Monitoring over time: batches scored against each version's reference, stored and
    thresholded through the governance facade's database and policy.

    Args:
        settings: The application settings (upload limit, cache dir).
        governance: The governance facade (database, policy, clock).
        monitoring: The drift reports over MLflow; built over a new gateway when None.
    """
    from app.batch_monitoring.service import BatchMonitoring

    reports = monitoring or build_monitoring(settings, build_gateway(settings))
    return BatchMonitoring(settings, reports, governance, now=governance.context.clock.now)
