"""Drift and feature importance for model versions: the MLflow gateway plus app.reports.

Plain Python (no Streamlit): `app.deps` caches what it returns for the pages, the CLI and the
governance EvidenceSource use it directly. Logged data sets are downloaded once into the cache
dir; importances are kept on disk per version (a registered version never changes).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.bootstrap import data_limits
from app.entities import DriftConfig, DriftResult, FeatureImportance
from app.errors import ImportanceNotLogged, InvalidInput, NotFound, UserFacingError
from app.reports import importance as imp, summaries
from app.reports.cache import (
    MB,
    cache_key,
    cached_drift,
    cached_report_html,
    enforce_budget,
    touch,
)
from app.reports.jobs import JobState, ReportJobs
from app.reports.uploads import read_path
from app.settings import Settings

if TYPE_CHECKING:
    from app.mlflow_gateway import MlflowGateway

DATA_SUFFIXES = (".parquet", ".pq", ".csv")
IMPORTANCE_ARTIFACT = "feature_importance.json"
RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # MLflow's are 32 hex digits
# Bounds on looking for a run's data sets (see `Monitoring.data_artifacts`).
MAX_DATA_SETS, MAX_LISTED, MAX_FOLDERS = 200, 5_000, 100
REFERENCE_NAMES = ("data/reference.parquet", "reference", "train")
CURRENT_NAMES = ("data/current.parquet", "current", "production")


def _pick(paths: tuple[str, ...], preferred: tuple[str, ...]) -> str | None:
    for hint in preferred:
        found = [p for p in paths if p == hint or hint in Path(p).stem]
        if found:
            return found[0]
    return None


class Monitoring:
    """Drift and importance reports for registered model versions."""

    def __init__(self, settings: Settings, gateway: MlflowGateway, jobs: ReportJobs) -> None:
        self.settings = settings
        self.gateway = gateway
        self.jobs = jobs

    # ---- logged data sets --------------------------------------------------------------------

    def data_artifacts(self, run_id: str, path: str = "", depth: int = 3) -> tuple[str, ...]:
        """CSV and Parquet artifacts of the run (model folders are skipped), at most
        MAX_DATA_SETS of them, found among at most MAX_LISTED entries in MAX_FOLDERS folders:
        a run that logged a million files costs a bounded walk, not a page that never loads."""
        found: list[str] = []
        budget = {"entries": MAX_LISTED, "folders": MAX_FOLDERS}
        self._walk_data(run_id, path, depth, found, budget)
        return tuple(sorted(found))

    def _walk_data(
        self, run_id: str, path: str, depth: int, found: list[str], budget: dict[str, int]
    ) -> None:
        budget["folders"] -= 1
        for item in self.gateway.list_artifacts(run_id, path)[: budget["entries"]]:
            budget["entries"] -= 1
            if len(found) >= MAX_DATA_SETS:
                return
            if item.is_dir and depth > 0 and Path(item.path).name not in ("model", "models"):
                if budget["folders"] > 0 and budget["entries"] > 0:
                    self._walk_data(run_id, item.path, depth - 1, found, budget)
            elif not item.is_dir and item.path.lower().endswith(DATA_SUFFIXES):
                found.append(item.path)

    def default_pair(self, run_id: str) -> tuple[str | None, str | None]:
        """The run's reference and current data sets, by the names seed-demo and teams use."""
        paths = self.data_artifacts(run_id)
        reference = _pick(paths, REFERENCE_NAMES) or (paths[0] if paths else None)
        current = _pick(tuple(p for p in paths if p != reference), CURRENT_NAMES)
        return reference, current

    def load_data(self, run_id: str, path: str) -> pd.DataFrame:
        """A logged data set as a frame (downloaded once into the cache dir)."""
        if not path.lower().endswith(DATA_SUFFIXES):
            raise InvalidInput(f"{path}: only CSV and Parquet data sets can be compared")
        folder = self._artifact_folder(run_id, path)
        local = folder / path
        if local.is_file():
            touch(local)
        else:
            local = self.gateway.download_artifact(run_id, path, folder)
            budget = self.settings.report_cache_max_mb * MB
            enforce_budget(self.settings.cache_dir / "artifacts", budget, keep=local)
        return read_path(local, data_limits(self.settings, upload=False))

    def _artifact_folder(self, run_id: str, path: str) -> Path:
        """The cache folder of the run's downloads; a run id or an artifact path (both come
        from MLflow) that would lead out of it is refused, never read."""
        parts = PurePosixPath(path).parts
        if not RUN_ID.fullmatch(run_id) or not parts or parts[0] == "/" or ".." in parts:
            raise InvalidInput(
                f"artifact {path[:200]!r} of run {run_id[:64]!r} is not a plain path"
            )
        return self.settings.cache_dir / "artifacts" / run_id

    # ---- drift -------------------------------------------------------------------------------

    def drift(
        self, reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig
    ) -> DriftResult:
        return cached_drift(
            reference, current, config, self.settings.cache_dir, self.settings.report_cache_max_mb
        )

    def start_report(
        self, reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig
    ) -> str:
        """Start (or join) the build of Evidently's full report; returns the job key."""
        key = cache_key(reference, current, config)
        root, max_mb = self.settings.cache_dir, self.settings.report_cache_max_mb
        self.jobs.submit(key, lambda: cached_report_html(reference, current, config, root, max_mb))
        return key

    def report_state(self, key: str) -> JobState | None:
        return self.jobs.state(key)

    # ---- feature importance ------------------------------------------------------------------

    def _importance_path(self, model: str, version: str) -> Path:
        # Per mode: what the model worker computed is never served when the worker is off.
        digest = hashlib.sha256(f"{self.settings.tracking_uri}|{model}".encode()).hexdigest()
        if not str(version).isdecimal():  # MLflow's versions are numbers; nothing else is a path
            raise NotFound(f"{model} has no version {str(version)[:40]!r}")
        name = f"{version}.{self.settings.model_importance}.json"
        return self.settings.cache_dir / "importance" / digest[:16] / name

    def feature_importance(
        self,
        model: str,
        version: str,
        *,
        target: str = "target",
        progress: Callable[[float, str], None] | None = None,
    ) -> FeatureImportance:
        """From the version's logged `feature_importance.json`; with
        `COUNTERSIGN_MODEL_IMPORTANCE=worker` and no such artifact, from the model worker.

        This process never loads a model: only the worker does, in its own process.

        Raises:
            NotFound: The version does not exist.
            ImportanceNotLogged: No importance was logged (and the worker is off, or has no data).
            ArtifactsUnreachable: The version's artifacts cannot be read from this server.
            LimitExceeded: An artifact, the data or the worker exceeded a configured limit.
            InvalidInput: The artifact or the worker's answer is not a valid importance.
        """
        path = self._importance_path(model, version)
        if path.is_file():
            try:
                return FeatureImportance(**json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, TypeError):
                path.unlink(missing_ok=True)  # a damaged entry is recomputed, never served
        mv = self.gateway.get_version(model, version)
        result = self._logged_importance(mv.run_id, model, version)
        if result is None:
            if self.settings.model_importance != "worker":
                raise ImportanceNotLogged(
                    f"{model} v{version}: no importance logged ({IMPORTANCE_ARTIFACT})"
                )
            result = self._worker_importance(mv.run_id, model, version, target, progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.__dict__, sort_keys=True), encoding="utf-8")
        return result

    def _logged_importance(self, run_id: str, model: str, version: str) -> FeatureImportance | None:
        if not run_id:
            return None
        listed = {a.path: a for a in self.gateway.list_artifacts(run_id)}
        item = listed.get(IMPORTANCE_ARTIFACT)
        if item is None or item.is_dir:
            return None
        what = f"{IMPORTANCE_ARTIFACT} of {model} v{version}"
        imp.check_artifact_size(item.file_size, what)  # before a byte is fetched
        folder = self._artifact_folder(run_id, IMPORTANCE_ARTIFACT)
        local = self.gateway.download_artifact(run_id, IMPORTANCE_ARTIFACT, folder)
        with local.open("rb") as fh:  # a store may list no size: read one byte past the bound
            data = fh.read(imp.MAX_ARTIFACT_BYTES + 1)
        return imp.read_artifact(data, model, version)

    def _worker_importance(
        self,
        run_id: str,
        model: str,
        version: str,
        target: str,
        progress: Callable[[float, str], None] | None,
    ) -> FeatureImportance:
        from app.model_worker.launcher import WorkerLimits, compute_importance

        reference = self.default_pair(run_id)[0] if run_id else None
        if reference is None:
            raise ImportanceNotLogged(
                f"{model} v{version}: no importance logged, and no logged reference data set "
                "for the model worker"
            )
        frame = self.load_data(run_id, reference)
        if progress:
            progress(0.0, "Computing in the model worker")
        limits = WorkerLimits(
            self.settings.model_worker_memory_mb,
            self.settings.model_worker_cpu_s,
            self.settings.model_worker_timeout_s,
            self.settings.model_worker_isolation,
        )
        with tempfile.TemporaryDirectory(
            prefix="countersign-worker-", ignore_cleanup_errors=True
        ) as tmp:
            workdir = Path(tmp)
            model_dir = self.gateway.download_model_files(model, version, workdir / "model")
            result = compute_importance(model_dir, frame, target, workdir, limits, model, version)
        if progress:
            progress(1.0, "Done")
        return result

    # ---- governance EvidenceSource -----------------------------------------------------------

    def version_drift(self, model: str, version: str) -> DriftResult | None:
        """The version's logged current data against its logged reference, or None."""
        mv = self.gateway.get_version(model, version)
        if not mv.run_id:
            return None
        reference, current = self.default_pair(mv.run_id)
        if reference is None or current is None:
            return None
        ref = self.load_data(mv.run_id, reference)
        cur = self.load_data(mv.run_id, current)
        shared = [c for c in ref.columns if c in cur.columns]
        return self.drift(ref[shared], cur[shared], DriftConfig())

    def drift_summary(self, model: str, version: str) -> Mapping[str, Any] | None:
        """EvidenceSource: drift share, drifted (important) columns, the verdict's hash."""
        try:
            result = self.version_drift(model, version)
        except NotFound:
            return None
        if result is None:
            return None
        try:
            importance = self.feature_importance(model, version)
        except UserFacingError:
            importance = None  # no importance logged (or none reachable): drift alone
        return summaries.drift_summary(result, importance)

    def importance_summary(self, model: str, version: str) -> Mapping[str, Any] | None:
        """EvidenceSource: top importances and their shift against the previous version."""
        try:
            current = self.feature_importance(model, version)
        except UserFacingError:
            return None  # the evidence then holds no importance: "no importance logged"
        previous = None
        if str(version).isdigit() and int(version) > 1:
            try:
                previous = self.feature_importance(model, str(int(version) - 1))
            except UserFacingError:
                previous = None
        return summaries.importance_summary(current, previous)


class VersionEvidence:
    """The governance EvidenceSource over Monitoring, built on first use (MLflow loads lazily).

    A store or data problem yields None (no report), never an exception: the policy's
    `if_missing` decides what a missing report means.
    """

    def __init__(self, build: Callable[[], Monitoring]) -> None:
        self._build = build
        self._monitoring: Monitoring | None = None

    def _get(self) -> Monitoring:
        if self._monitoring is None:
            self._monitoring = self._build()
        return self._monitoring

    def drift_summary(self, model: str, version: str) -> Mapping[str, Any] | None:
        try:
            return self._get().drift_summary(model, version)
        except UserFacingError:
            return None

    def importance_summary(self, model: str, version: str) -> Mapping[str, Any] | None:
        try:
            return self._get().importance_summary(model, version)
        except UserFacingError:
            return None
