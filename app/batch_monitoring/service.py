"""BatchMonitoring: what the CLI, the pages and the demo seeder call to score batches over time.

Each model version's reference is the one Drift picks (`Monitoring.default_pair`: the data set
logged with the version's run). Its statistics are prepared once per version and process
(`ReferenceProfile`: finite values sorted per numerical column, cleaned values per categorical
column, kept in a small LRU), so a new batch only prepares its own columns. Recording, findings
and reads go through `governance.monitoring_service`, which authorises and audits.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.batch_monitoring import scoring, sources
from app.entities import DriftConfig
from app.errors import InvalidInput, NotFound
from app.reports.columns import drift_columns
from app.reports.quality import quality as quality_of
from app.reports.verdict import ReferenceProfile
from governance import monitoring_service as svc
from governance.errors import NotFound as GovernanceNotFound
from governance.monitoring_rules import (
    MonitoringBatch,
    MonitoringFinding,
    MonitoringThresholds,
    thresholds_for,
)

if TYPE_CHECKING:
    from app.facade import GovernanceFacade
    from app.monitoring import Monitoring
    from app.settings import Settings

PROFILES_KEPT = 8
BASELINE_NAMES = ("evaluation", "validation", "test")


@dataclass(frozen=True)
class RunOutcome:
    """One `monitor run` of one batch."""

    batch: MonitoringBatch
    already_recorded: bool
    opened: tuple[MonitoringFinding, ...] = ()
    missing_columns: tuple[str, ...] = ()

    def view(self) -> dict[str, Any]:
        out = scoring.run_view(self.batch, already_recorded=self.already_recorded)
        out["alerts"] = [
            {"finding_id": f.id, "check": f.check, "limit": f.limit, "value": f.value}
            for f in self.opened
        ]
        if self.missing_columns:
            out["missing_columns"] = list(self.missing_columns)
        return out


@dataclass
class _Reference:
    path: str
    run_id: str
    profile: ReferenceProfile
    baselines: dict[tuple[str, str, str], dict[str, Any] | None] = field(default_factory=dict)


class BatchMonitoring:
    """Scores production batches per model version and keeps the timeline in the database."""

    def __init__(
        self,
        settings: Settings,
        reports: Monitoring,
        governance: GovernanceFacade,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.reports = reports
        self.governance = governance
        self.now = now
        self._profiles: OrderedDict[tuple[str, str], _Reference] = OrderedDict()
        self._lock = threading.Lock()

    # ---- the reference ------------------------------------------------------------------------

    def _reference(self, model: str, version: str) -> _Reference:
        key = (model, str(version))
        with self._lock:
            if key in self._profiles:
                self._profiles.move_to_end(key)
                return self._profiles[key]
        mv = self.reports.gateway.get_version(model, str(version))
        path = self.reports.default_pair(mv.run_id)[0] if mv.run_id else None
        if path is None:
            raise InvalidInput(
                f"{model} v{version}: its run logged no CSV or Parquet data set to use as the "
                "reference (the Drift page's reference)"
            )
        frame = self.reports.load_data(mv.run_id, path)
        profile = ReferenceProfile(frame)
        profile.prepare(drift_columns(frame, DriftConfig().roles))
        entry = _Reference(path, mv.run_id, profile)
        with self._lock:
            self._profiles[key] = entry
            while len(self._profiles) > PROFILES_KEPT:
                self._profiles.popitem(last=False)
        return entry

    def reference_frame(self, model: str, version: str) -> pd.DataFrame:
        """The version's reference data (as Drift picks it)."""
        return self._reference(model, version).profile.frame

    def baseline(
        self, model: str, version: str, label: str, prediction: str, task: str = ""
    ) -> dict[str, Any] | None:
        """The reference's quality (else a logged evaluation set's), or None without labels."""
        ref = self._reference(model, version)
        key = (label, prediction, task)
        if key in ref.baselines:
            return ref.baselines[key]
        candidates: list[pd.DataFrame] = [ref.profile.frame]
        for path in self.reports.data_artifacts(ref.run_id):
            if path != ref.path and any(n in path.lower() for n in BASELINE_NAMES):
                candidates.append(self.reports.load_data(ref.run_id, path))
        found = None
        for frame in candidates:
            if label in frame.columns and prediction in frame.columns:
                try:
                    found = quality_of(frame, label, prediction, task or None)
                except InvalidInput:
                    continue
                break
        ref.baselines[key] = found
        return found

    # ---- scoring and recording ----------------------------------------------------------------

    def _may_monitor(self, actor: str) -> None:
        # Before the scoring work; recording authorises again in its own transaction.
        facade = self.governance
        svc.authorise_recording(facade.store.unit_of_work(read_only=True), facade.context, actor)

    def run_frame(
        self,
        actor: str,
        model: str,
        version: str,
        frame: pd.DataFrame,
        *,
        as_of: datetime | None = None,
        source: str = "",
        label: str = "",
        prediction: str = "",
        task: str | None = None,
    ) -> RunOutcome:
        """Score one batch given as a frame and record it (the demo seeder's door).

        Args:
            actor: Who records it (a person, `system:cli` or `system:scheduler`).
            as_of: When the batch's data was observed (UTC); now when None.
            source: What the batch row records as its origin (a path or URI, or a label).
            label, prediction: The label and prediction columns, for quality metrics.
            task: "classification" or "regression"; inferred from the label when None.

        Raises:
            NotAllowed: The actor may not record batches.
            NotFound: No such model version.
            InvalidInput: No reference, or data that cannot be compared or measured.
        """
        self._may_monitor(actor)
        # The same content for the same version is the same batch: answer from the database
        # before any scoring (a daily job may point at a folder that keeps growing).
        content = scoring.content_sha256(frame)
        known = self._known(actor, scoring.batch_id(model, str(version), content))
        if known is not None:
            return RunOutcome(known, already_recorded=True)
        ref = self._reference(model, version)
        scored = scoring.score(
            ref.profile, frame, label=label, prediction=prediction, task=task, content=content
        )
        record = scoring.to_record(
            model,
            str(version),
            scored,
            as_of=as_of or self.now(),
            source=source or "frame",
            label=label,
            prediction=prediction,
            reference=f"runs:/{ref.run_id}/{ref.path}",
        )
        facade = self.governance
        done = svc.record_batch(facade.store.unit_of_work(), facade.context, actor, record)
        return RunOutcome(done.batch, done.already_recorded, done.opened, scored.missing_columns)

    def _known(self, actor: str, batch_id: str) -> MonitoringBatch | None:
        try:
            return self.batch(actor, batch_id)
        except GovernanceNotFound:
            return None

    def read_source(self, source: sources.Source) -> pd.DataFrame:
        """A batch's data from a local file or a run artifact (size-limited)."""
        from app.bootstrap import data_limits
        from app.reports.uploads import read_path

        if source.kind == "run":
            return self.reports.load_data(source.run_id, source.path)
        return read_path(source.path, data_limits(self.settings))

    def run(
        self,
        actor: str,
        model: str,
        version: str,
        source: sources.Source,
        *,
        as_of: datetime | None = None,
        label: str = "",
        prediction: str = "",
        task: str | None = None,
    ) -> RunOutcome:
        """Score and record one source; its as-of time is `as_of`, else a date in its file
        name, else now."""
        self._may_monitor(actor)
        frame = self.read_source(source)
        when = as_of or sources.as_of_from_name(source.name) or self.now()
        return self.run_frame(
            actor,
            model,
            version,
            frame,
            as_of=when,
            source=source.text,
            label=label,
            prediction=prediction,
            task=task,
        )

    def run_upload(
        self,
        actor: str,
        model: str,
        version: str,
        data: bytes,
        name: str,
        *,
        as_of: datetime | None = None,
        label: str = "",
        prediction: str = "",
    ) -> RunOutcome:
        """Score an uploaded file. It is kept as Parquet under the data dir (named by its
        SHA-256) so the batch's Evidently report can be built later from the same data."""
        from app.bootstrap import data_limits
        from app.reports.uploads import read_path, read_table

        self._may_monitor(actor)
        frame = read_table(data, name, data_limits(self.settings))
        folder = self.settings.data_dir / "monitoring" / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{scoring.content_sha256(frame)}.parquet"
        if not path.is_file():
            frame.to_parquet(path, index=False)
        # Scored as read back, so reading the kept file later gives the same content hash.
        kept = read_path(path, data_limits(self.settings))
        return self.run_frame(
            actor,
            model,
            version,
            kept,
            as_of=as_of,
            source=str(path),
            label=label,
            prediction=prediction,
        )

    def batch_data(self, batch: MonitoringBatch) -> pd.DataFrame:
        """The batch's data read again from its source, checked against its content hash.

        Raises:
            InvalidInput: The source cannot be read any more, or its content changed.
        """
        try:
            source = sources.parse(batch.source)
            frame = self.read_source(source)
        except (InvalidInput, NotFound) as exc:
            raise InvalidInput(
                f"batch {batch.batch_id}: its data ({batch.source}) cannot be read again: {exc}"
            ) from exc
        if scoring.content_sha256(frame) != batch.content_sha256:
            raise InvalidInput(
                f"batch {batch.batch_id}: {batch.source} changed since it was scored "
                "(its SHA-256 differs); the stored verdict stands"
            )
        return frame

    # ---- reads and findings -------------------------------------------------------------------

    def history(self, actor: str, model: str, version: str) -> tuple[MonitoringBatch, ...]:
        """The version's batches, oldest as-of first."""
        facade = self.governance
        return svc.list_batches(
            facade.store.unit_of_work(read_only=True), facade.context, actor, model, str(version)
        )

    def batch(self, actor: str, batch_id: str) -> MonitoringBatch:
        facade = self.governance
        return svc.get_batch(
            facade.store.unit_of_work(read_only=True), facade.context, actor, batch_id
        )

    def findings(
        self, actor: str, model: str = "", version: str = "", *, only_open: bool = True
    ) -> tuple[MonitoringFinding, ...]:
        facade = self.governance
        return svc.list_findings(
            facade.store.unit_of_work(read_only=True),
            facade.context,
            actor,
            model=model,
            version=version,
            only_open=only_open,
        )

    def close_finding(self, actor: str, finding_id: str, comment: str) -> svc.ClosedFinding:
        """A person closes a finding with a comment (audited)."""
        facade = self.governance
        return svc.close_finding(
            facade.store.unit_of_work(), facade.context, actor, finding_id, comment
        )

    def thresholds(self, model: str) -> MonitoringThresholds | None:
        """The policy's monitoring thresholds for the model (None when it names none)."""
        return thresholds_for(self.governance.policy.document, model)
