"""MlflowGateway: the read side of the product over MLflow tracking and the Model Registry.

Every method returns our own entities (or DataFrames) and raises only the product's
user-facing errors: StoreUnavailable, InvalidQuery, NotFound.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from app.entities import (
    ArtifactInfo,
    DatasetInfo,
    ExperimentInfo,
    LoggedModelInfo,
    ModelVersionInfo,
    RegisteredModelInfo,
    RunsPage,
    RunSummary,
    StoreCounts,
    StoreHealth,
    StoreSchema,
)
from app.errors import InvalidQuery, NotFound, UserFacingError
from app.mlflow_gateway import artifacts, fast_reads
from app.mlflow_gateway._access import StoreAccess
from app.mlflow_gateway._logged_models import to_logged_model
from app.mlflow_gateway._signature import read_signature
from app.mlflow_gateway._sql import SqlRegistryReader
from app.mlflow_gateway._support import (
    mlflow_errors,
    ms_to_dt,
    redact,
    to_dataset,
    to_experiment,
    to_run_summary,
    to_version,
)
from app.mlflow_gateway.runs_table import RunsTableService
from app.settings import Settings

MAX_PAGE_SIZE = 1000


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class MlflowGateway:
    """Reads experiments, runs and registered models from the configured MLflow store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tracking_uri = settings.tracking_uri
        self.registry_uri = settings.registry_uri
        self._access = StoreAccess(settings)  # checks each store before MLflow opens it
        self._runs_table = RunsTableService(lambda: self._client, settings)
        self._authors: dict[str, str] = {}
        self._roots: dict[str, str] = {}
        self._fast = fast_reads.FastReads(
            self._runs_table.sql, SqlRegistryReader(self.registry_uri), self._author
        )

    @property
    def _client(self) -> Any:
        """The client for experiments and runs (read-only SQL on a store MLflow would migrate)."""
        with self._errors():
            return self._access.tracking_client()

    @property
    def _registry(self) -> Any:
        """MLflow's client, for the registry, logged models and artifacts."""
        with self._registry_errors():
            return self._access.registry_client()

    @property
    def backend(self) -> str:
        scheme = self.tracking_uri.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme in ("sqlite", "postgresql", "mysql", "mssql"):
            return "sql"
        if scheme in ("http", "https"):
            return "http"
        return scheme or "file"

    def _errors(self, what: str = "") -> Any:
        return mlflow_errors(self.tracking_uri, what)

    def _registry_errors(self, what: str = "") -> Any:
        return mlflow_errors(self.registry_uri, what)

    # ---- store -------------------------------------------------------------------------------

    def health(self) -> StoreHealth:
        """Whether the tracking and registry stores answer. Never raises.

        Returns:
            StoreHealth with ok=False and a one-line message when a store cannot be read.
        """
        try:
            with self._errors():
                self._client.search_experiments(max_results=1)
            if not self._access.registry_absent:
                with self._registry_errors():
                    self._registry.search_registered_models(max_results=1)
        except UserFacingError as exc:
            return StoreHealth(
                False, redact(self.tracking_uri), redact(self.registry_uri), self.backend, str(exc)
            )
        return StoreHealth(True, redact(self.tracking_uri), redact(self.registry_uri), self.backend)

    def counts(self) -> StoreCounts:
        """Number of active experiments, active runs, registered models and model versions."""
        experiments = self.list_experiments()
        runs = self._runs_table.count_runs([e.experiment_id for e in experiments])
        if self._access.registry_absent:
            return StoreCounts(len(experiments), runs, 0, 0)
        fast = self._fast.counts()
        if fast is not None:
            return StoreCounts(len(experiments), runs, *fast)
        with self._registry_errors():
            models = self._paged(self._registry.search_registered_models, max_results=1000)
            versions = self._paged(self._registry.search_model_versions, max_results=10000)
        return StoreCounts(len(experiments), runs, len(models), len(versions))

    def schema_notice(self) -> str | None:
        """The message for the top of every page when a SQL store is at another MLflow schema
        revision (None otherwise, and when the store cannot be checked: pages say that)."""
        return self._access.notice()

    def schema_report(self) -> tuple[StoreSchema, ...]:
        """The tracking and registry stores' schema states (`python -m app.cli store check`).

        Raises:
            StoreUnavailable: A store is missing, unreachable or unreadable.
        """
        return self._access.report()

    def store_notes(self) -> list[str]:
        """Notes about the store worth a line on the pages (e.g. experiment folders skipped)."""
        return self._access.notes()

    @staticmethod
    def _paged(call: Any, **kwargs: Any) -> list[Any]:
        items: list[Any] = []
        token = None
        while True:
            page = call(page_token=token, **kwargs)
            items.extend(page)
            token = page.token
            if not token:
                return items

    # ---- experiments and runs ----------------------------------------------------------------

    def list_experiments(self) -> tuple[ExperimentInfo, ...]:
        """Active experiments, by name."""
        found = self._fast.experiments()
        if found is None:
            with self._errors():
                exps = self._paged(self._client.search_experiments, max_results=1000)
            found = [to_experiment(e) for e in exps]
        return tuple(sorted(found, key=lambda e: e.name.lower()))

    def search_runs_page(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        page_size: int = 100,
        page_token: str | None = None,
    ) -> RunsPage:
        """One page of runs, filtered and sorted by the server (never all runs).

        Args:
            experiment_ids: Experiments to search.
            filter_string: An MLflow search filter, e.g. "metrics.rmse < 1 and params.depth = '3'".
            order_by: MLflow order clauses, e.g. ["metrics.rmse ASC"]; default newest first.
            page_size: Rows per page (1..1000).
            page_token: The `next_token` of the previous page.

        Raises:
            InvalidQuery: The filter or sort clause is not valid MLflow syntax.
            StoreUnavailable: The store cannot be reached.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidQuery(f"page size must be between 1 and {MAX_PAGE_SIZE}")
        with self._errors():
            page = self._client.search_runs(
                experiment_ids=list(experiment_ids),
                filter_string=filter_string.strip(),
                order_by=list(order_by) if order_by else None,
                max_results=page_size,
                page_token=page_token or None,
            )
        return RunsPage(tuple(to_run_summary(r) for r in page), page.token or None)

    def recent_runs(self, n: int = 10) -> tuple[RunSummary, ...]:
        """The n most recently started runs across all active experiments."""
        ids = [e.experiment_id for e in self.list_experiments()]
        if not ids:
            return ()
        fast = self._fast.recent_runs(ids, n)
        if fast is not None:
            return tuple(fast)
        return self.search_runs_page(ids, order_by=["attributes.start_time DESC"], page_size=n).runs

    def get_runs(self, run_ids: Iterable[str]) -> tuple[RunSummary, ...]:
        """The given runs, in the given order. Raises NotFound for an unknown id."""
        run_ids = list(run_ids)
        fast = self._fast.runs(run_ids)
        if fast is not None:
            return tuple(fast)
        out = []
        for run_id in run_ids:
            with self._errors(f"run {run_id}"):
                out.append(to_run_summary(self._client.get_run(run_id)))
        return tuple(out)

    def runs_table(self, experiment_ids: Sequence[str]) -> tuple[pd.DataFrame, str]:
        """Every active run of the experiments with all params, metrics and tags.

        Returns:
            (table, path): columns run_id, run_name, status, user, start_time, end_time,
            experiment_id, then `params.X`, `metrics.X`, `tags.X`; `path` names what served it:
            "sql" (read-only SQL over MLflow's tables), "sql-incremental", "api",
            "api-incremental" or "memory" (see `runs_table.py`).
        """
        with self._errors():
            return self._runs_table.table([str(e) for e in experiment_ids])

    def metric_history(self, run_ids: Iterable[str], keys: Iterable[str]) -> pd.DataFrame:
        """Every logged value of the metrics: columns run_id, key, value, step, timestamp (UTC)."""
        rows = []
        keys = list(keys)
        for run_id in run_ids:
            for key in keys:
                with self._errors(f"run {run_id}"):
                    history = self._client.get_metric_history(run_id, key)
                rows.extend(
                    (run_id, m.key, float(m.value), int(m.step), m.timestamp) for m in history
                )
        frame = pd.DataFrame(rows, columns=["run_id", "key", "value", "step", "timestamp"])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ms", utc=True)
        return frame.sort_values(["run_id", "key", "step", "timestamp"], ignore_index=True)

    def run_datasets(self, run_id: str) -> tuple[DatasetInfo, ...]:
        """Data sets logged on the run with `mlflow.log_input` (lineage)."""
        with self._errors(f"run {run_id}"):
            run = self._client.get_run(run_id)
        inputs = getattr(run, "inputs", None)
        return tuple(to_dataset(d) for d in (inputs.dataset_inputs if inputs else []))

    def missing_dataset_inputs(self, run_id: str) -> int:
        """Data set inputs of the run whose data set record is gone: MLflow leaves them out of
        `run_datasets`; 0 when the store cannot tell (an HTTP store)."""
        with self._errors(f"run {run_id}"):
            run = self._client.get_run(run_id)
        return self._access.missing_dataset_inputs(str(run.info.experiment_id), run_id)

    def child_run_counts(self, experiment_ids: Sequence[str], limit: int = 5000) -> dict[str, int]:
        """Parent run id -> number of its active child runs (`mlflow.parentRunId`), reading at
        most `limit` child runs."""
        counts: dict[str, int] = {}
        token = None
        seen = 0
        while seen < limit:
            page = self.search_runs_page(
                experiment_ids, "tags.mlflow.parentRunId IS NOT NULL", None, 1000, token
            )
            for run in page.runs:
                parent = run.tags.get("mlflow.parentRunId", "")
                counts[parent] = counts.get(parent, 0) + 1
            seen += len(page.runs)
            token = page.next_token
            if not token:
                break
        return counts

    def _run_root(self, run_id: str) -> str:
        # A run's artifact root never changes; a store that is not reachable is asked again.
        if run_id not in self._roots:
            with self._errors(f"run {run_id}"):
                uri = str(self._client.get_run(run_id).info.artifact_uri or "")
            self._roots[run_id] = uri
        artifacts.check_reachable(self._roots[run_id], run_root=True)
        return self._roots[run_id]

    def list_artifacts(self, run_id: str, path: str = "") -> tuple[ArtifactInfo, ...]:
        """The artifacts directly under `path` of the run.

        Raises:
            NotFound: The run does not exist.
            ArtifactsUnreachable: The run's artifact store cannot be read from this server.
        """
        root = self._run_root(run_id)
        with artifacts.artifact_errors(root, f"artifact folder {path!r}"):
            items = self._client.list_artifacts(run_id, path or None)
        return tuple(ArtifactInfo(i.path, bool(i.is_dir), i.file_size) for i in items)

    def download_artifact(self, run_id: str, path: str, dst_dir: Path) -> Path:
        """Download one file of the run into dst_dir, refusing it unread when its listed size
        is over `COUNTERSIGN_ARTIFACT_MAX_MB`.

        Raises:
            NotFound: The run or the file does not exist.
            LimitExceeded: The file is larger than the limit.
            ArtifactsUnreachable: The run's artifact store cannot be read from this server.
        """
        return artifacts.download_run_file(
            self._client,
            run_id,
            self._run_root(run_id),
            path,
            dst_dir,
            self.settings.artifact_max_mb,
            "COUNTERSIGN_ARTIFACT_MAX_MB",
        )

    def download_model_files(self, name: str, version: str, dst_dir: Path) -> Path:
        """Copy the version's model folder (MLmodel and model files) into dst_dir, unread.

        Only the model worker ever loads what lands there (see app/model_worker).

        Raises:
            NotFound: The version does not exist.
            LimitExceeded: The folder is larger than `COUNTERSIGN_ARTIFACT_MAX_MB`.
            ArtifactsUnreachable: Its artifact store cannot be read from this server.
        """
        with self._registry_errors(f"model {name!r} version {version}"):
            mv = self._client.get_model_version(name, str(version))
            uri = artifacts.model_files_uri(self._client, mv)
        return artifacts.download_tree(
            uri,
            dst_dir,
            self.tracking_uri,
            self.settings.artifact_max_mb,
            "COUNTERSIGN_ARTIFACT_MAX_MB",
        )

    # ---- registry ----------------------------------------------------------------------------

    def _author(self, run_id: str) -> str:
        if not run_id:
            return ""
        if run_id not in self._authors:
            from mlflow.exceptions import MlflowException

            try:
                with self._errors():
                    run = self._client.get_run(run_id)
                self._authors[run_id] = run.info.user_id or run.data.tags.get("mlflow.user", "")
            except (NotFound, MlflowException):
                return ""
        return self._authors[run_id]

    def _version(self, mv: Any) -> ModelVersionInfo:
        return to_version(mv, self._author(mv.run_id or ""))

    def _model(self, rm: Any) -> RegisteredModelInfo:
        aliases = {a: str(v) for a, v in (rm.aliases or {}).items()}
        # MLflow leaves the aliases out of `latest_versions` on SQL stores; the model has them.
        held: dict[str, list[str]] = {}
        for alias, number in aliases.items():
            held.setdefault(number, []).append(alias)
        latest = [self._version(v) for v in (rm.latest_versions or [])]
        return RegisteredModelInfo(
            name=rm.name,
            description=rm.description or "",
            tags=dict(rm.tags or {}),
            aliases=aliases,
            latest_versions=tuple(
                replace(v, aliases=tuple(sorted(held.get(v.version, ())))) for v in latest
            ),
            creation_time=ms_to_dt(rm.creation_timestamp),
            last_updated_time=ms_to_dt(rm.last_updated_timestamp),
        )

    def list_registered_models(self) -> tuple[RegisteredModelInfo, ...]:
        """Every registered model with its aliases and latest version per stage."""
        if self._access.registry_absent:
            return ()
        found = self._fast.registered_models()
        if found is not None:
            return tuple(sorted(found, key=lambda m: m.name.lower()))
        with self._registry_errors():
            models = self._paged(self._registry.search_registered_models, max_results=1000)
        return tuple(sorted((self._model(m) for m in models), key=lambda m: m.name.lower()))

    def get_registered_model(self, name: str) -> RegisteredModelInfo:
        """One registered model. Raises NotFound."""
        self._require_registry(f"model {name!r}")
        found = self._fast.registered_model(name)
        if found is not None:
            return found
        with self._registry_errors(f"model {name!r}"):
            return self._model(self._registry.get_registered_model(name))

    def list_versions(self, name: str) -> tuple[ModelVersionInfo, ...]:
        """All versions of the model, newest first. Raises NotFound for an unknown model."""
        fast = self._fast.versions(name)
        if fast is not None:
            return tuple(sorted(fast, key=lambda v: -int(v.version)))
        model = self.get_registered_model(name)
        with self._registry_errors(f"model {name!r}"):
            versions = self._paged(
                self._registry.search_model_versions,
                filter_string=f"name = {_quote(name)}",
                max_results=10000,
            )
        # search_model_versions leaves aliases out; the registered model has them.
        by_version: dict[str, list[str]] = {}
        for alias, number in model.aliases.items():
            by_version.setdefault(number, []).append(alias)
        out = [self._version(v) for v in versions]
        out = [replace(v, aliases=tuple(sorted(by_version.get(v.version, ())))) for v in out]
        return tuple(sorted(out, key=lambda v: -int(v.version)))

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        """One model version. Raises NotFound."""
        self._require_registry(f"model {name!r} version {version}")
        with self._registry_errors(f"model {name!r} version {version}"):
            return self._version(self._registry.get_model_version(name, str(version)))

    def version_by_alias(self, name: str, alias: str) -> ModelVersionInfo:
        """The version an alias points to. Raises NotFound when the alias is not set."""
        self._require_registry(f"alias {alias!r} of model {name!r}")
        with self._registry_errors(f"alias {alias!r} of model {name!r}"):
            return self._version(self._registry.get_model_version_by_alias(name, alias))

    def version_signature(self, name: str, version: str) -> dict[str, Any]:
        """The logged model's signature: {"inputs": [...], "outputs": [...], "params": [...]}.

        Items are dicts as MLflow writes them: {"name", "type", "required"} for columns,
        {"type": "tensor", "tensor-spec": {...}} for tensors. Empty when logged without one.
        """
        self._require_registry(f"model {name!r} version {version}")
        with self._registry_errors(f"model {name!r} version {version}"):
            # The MLmodel file's place is all this needs: the version's source, read by SQL
            # where it can be (MLflow's get_model_version also reads its tags and aliases).
            mv = self._fast.version_files(name, str(version))
            if mv is None:
                mv = self._registry.get_model_version(name, str(version))
            return read_signature(self._registry, mv, self.tracking_uri)

    def logged_model(self, model_id: str) -> LoggedModelInfo:
        """The MLflow 3 LoggedModel a version was registered from, with its params and metrics.

        Raises:
            NotFound: No such logged model (or the store keeps none).
        """
        with self._errors(f"logged model {model_id}"):
            return to_logged_model(self._registry.get_logged_model(model_id))

    def _require_registry(self, what: str) -> None:
        if self._access.registry_absent:
            raise NotFound(
                f"{what} was not found in {redact(self.registry_uri)} (no models folder)"
            )
