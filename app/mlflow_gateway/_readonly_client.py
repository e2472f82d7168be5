"""The runs side of MlflowClient over a store MLflow's own client would migrate.

When a SQL store is at another schema revision than the installed MLflow expects, the gateway
reads experiments, runs and metric histories through this client instead: plain read-only SELECTs
(`_sql_readonly.LegacyRunsReader`), turned into MLflow's entities, then filtered, sorted and paged
with MLflow's own `SearchUtils`, so a filter means exactly what it means to MLflow. Anything else
(the registry, artifacts, logged models) raises StoreSchemaMismatch with the store's message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from app.errors import StoreSchemaMismatch
from app.mlflow_gateway._sql_readonly import LegacyRunsReader

ACTIVE = "active"


class ReadOnlyRunsClient:
    """Duck-types the MlflowClient calls of the runs pages; refuses everything else."""

    def __init__(self, uri: str, message: str) -> None:
        self._reader = LegacyRunsReader(uri)
        self._message = message

    def __getattr__(self, name: str) -> Any:
        # The registry, artifacts and logged models need MLflow's client: refuse them all.
        if name.startswith("_"):
            raise AttributeError(name)
        raise StoreSchemaMismatch(self._message)

    # ---- experiments ---------------------------------------------------------------------------

    def search_experiments(self, max_results: int = 1000, page_token: str | None = None) -> Any:
        from mlflow.entities import Experiment, ExperimentTag
        from mlflow.store.entities.paged_list import PagedList
        from mlflow.utils.search_utils import SearchUtils

        tags: dict[str, list[Any]] = defaultdict(list)
        for exp_id, key, value in self._reader.experiment_tags():
            tags[str(exp_id)].append(ExperimentTag(key, value))
        found = [
            Experiment(str(i), name, location, stage, tags[str(i)])
            for i, name, location, stage in self._reader.experiments()
            if stage == ACTIVE
        ]
        found.sort(key=lambda e: int(e.experiment_id))
        page, token = SearchUtils.paginate(found, page_token, max_results)
        return PagedList(page, token)

    # ---- runs ----------------------------------------------------------------------------------

    def _runs(self, experiment_ids: Sequence[str] = (), run_ids: Sequence[str] = ()) -> list[Any]:
        from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag

        rows = self._reader.runs(experiment_ids, run_ids)
        params: dict[str, list[Any]] = defaultdict(list)
        metrics: dict[str, list[Any]] = defaultdict(list)
        tags: dict[str, list[Any]] = defaultdict(list)
        for run_id, key, value in rows["params"]:
            params[run_id].append(Param(key, value))
        for run_id, key, value, ts, step, is_nan in rows["metrics"]:
            metrics[run_id].append(
                Metric(key, float("nan") if is_nan else float(value), int(ts or 0), int(step or 0))
            )
        for run_id, key, value in rows["tags"]:
            tags[run_id].append(RunTag(key, value))
        runs = []
        for run_id, name, status, user, start, end, stage, artifacts, exp_id in rows["runs"]:
            run_name = name or next(
                (t.value for t in tags[run_id] if t.key == "mlflow.runName"), ""
            )
            info = RunInfo(
                run_id=run_id,
                experiment_id=str(exp_id),
                user_id=user or "",
                status=status,
                start_time=int(start or 0),
                end_time=None if end is None else int(end),
                lifecycle_stage=stage,
                artifact_uri=artifacts,
                run_name=run_name,
            )
            data = RunData(metrics=metrics[run_id], params=params[run_id], tags=tags[run_id])
            runs.append(Run(info, data))
        return runs

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        **_: Any,
    ) -> Any:
        from mlflow.store.entities.paged_list import PagedList
        from mlflow.utils.search_utils import SearchUtils

        runs = [r for r in self._runs(experiment_ids) if r.info.lifecycle_stage == ACTIVE]
        runs = SearchUtils.filter(runs, filter_string)
        runs = SearchUtils.sort(runs, list(order_by or []))
        page, token = SearchUtils.paginate(runs, page_token, max_results)
        return PagedList(page, token)

    def get_run(self, run_id: str) -> Any:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

        found = self._runs(run_ids=[run_id])
        if not found:
            raise MlflowException(f"Run '{run_id}' not found", RESOURCE_DOES_NOT_EXIST)
        return found[0]

    def get_metric_history(self, run_id: str, key: str) -> list[Any]:
        from mlflow.entities import Metric

        return [
            Metric(key, float("nan") if is_nan else float(value), int(ts or 0), int(step or 0))
            for value, ts, step, is_nan in self._reader.metric_history(run_id, key)
        ]
