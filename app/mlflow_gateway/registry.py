"""MlflowModelRegistry: the governance `ModelRegistry` port implemented over MLflow.

Writes (aliases, stages, tags) happen here and only after the workflow approved them. Errors are
translated to governance errors: UnknownModel for a model or version MLflow does not know,
RegistryUnavailable when MLflow cannot be reached (after a bounded, fast retry).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from app.errors import InvalidQuery, NotFound, StoreUnavailable
from app.mlflow_gateway._access import StoreAccess
from app.mlflow_gateway._logged_models import lineage_data, to_logged_model
from app.mlflow_gateway._support import mlflow_errors, model_id_of, to_dataset
from app.settings import Settings
from governance.errors import RegistryUnavailable, UnknownModel
from governance.ports import STAGES, RegistryVersion, TargetAssignment


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class MlflowModelRegistry:
    """The model registry as the governance workflow sees it (`governance.ports.ModelRegistry`)."""

    def __init__(self, settings: Settings) -> None:
        self.registry_uri = settings.registry_uri
        self.tracking_uri = settings.tracking_uri
        # Checks each store before MLflow opens it: a store at another schema revision is
        # refused (RegistryUnavailable with the store's message), never migrated.
        self._access = StoreAccess(settings)

    @property
    def _client(self) -> Any:
        try:
            return self._access.registry_client()
        except StoreUnavailable as exc:
            raise RegistryUnavailable(str(exc)) from None

    @contextmanager
    def _errors(self, model: str, version: str | None = None) -> Iterator[None]:
        what = f"model {model!r}" + (f" version {version}" if version is not None else "")
        try:
            with mlflow_errors(self.registry_uri, what):
                yield
        except NotFound:
            raise UnknownModel(f"the registry has no {what}") from None
        except InvalidQuery:
            # MLflow answers "version must be an integer" for versions such as "abc".
            raise UnknownModel(f"the registry has no {what}") from None
        except StoreUnavailable as exc:
            raise RegistryUnavailable(str(exc)) from None

    def _model_version(self, model: str, version: str) -> Any:
        self._require_registry(model, version)
        with self._errors(model, version):
            return self._client.get_model_version(model, str(version))

    def get_version(self, model: str, version: str) -> RegistryVersion:
        """One version with its source run's metrics, params and author.

        Raises:
            UnknownModel: No such model or version.
            RegistryUnavailable: The registry cannot be reached.
        """
        mv = self._model_version(model, version)
        metrics: dict[str, float] = {}
        params: dict[str, str] = {}
        author = ""
        datasets: list[Any] = []
        model_id = model_id_of(mv)
        logged = self._logged_model(model, version, model_id)
        run_id = mv.run_id or (logged.source_run_id if logged else "")
        if run_id:
            try:
                with self._errors(model, version):
                    run = self._client.get_run(run_id)
                metrics = {k: float(v) for k, v in run.data.metrics.items()}
                params = dict(run.data.params)
                author = run.info.user_id or run.data.tags.get("mlflow.user", "")
                inputs = getattr(run, "inputs", None)
                datasets = [to_dataset(d) for d in (inputs.dataset_inputs if inputs else [])]
            except UnknownModel:
                pass  # the source run was deleted: the version itself still exists
        if logged is not None:
            # The model's own metrics and params are the precise ones: a run that logged several
            # models holds only the last value of each metric.
            metrics.update(logged.latest_metrics())
            params.update(logged.params)
        return RegistryVersion(
            model=mv.name,
            version=str(mv.version),
            run_id=mv.run_id or "",
            run_author=author,
            stage=str(mv.current_stage or "None"),
            aliases=tuple(sorted(mv.aliases or ())),
            metrics=metrics,
            params=params,
            tags=dict(mv.tags or {}),
            model_id=model_id,
            lineage=lineage_data(logged, datasets),
        )

    def _logged_model(self, model: str, version: str, model_id: str) -> Any:
        if not model_id:
            return None
        try:
            with self._errors(model, version):
                return to_logged_model(self._client.get_logged_model(model_id))
        except UnknownModel:
            return None  # the logged model was deleted: the version itself still exists

    def _require_registry(self, model: str, version: str | None = None) -> None:
        if self._access.registry_absent:
            what = f"model {model!r}" + (f" version {version}" if version is not None else "")
            raise UnknownModel(f"the registry has no {what} (its file store has no models folder)")

    def alias_holder(self, model: str, alias: str) -> str | None:
        """The version the alias points to now, or None."""
        self._require_registry(model)
        with self._errors(model):
            rm = self._client.get_registered_model(model)
        holder = (rm.aliases or {}).get(alias)
        return str(holder) if holder is not None else None

    def _versions(self, model: str) -> list[Any]:
        self._require_registry(model)
        with self._errors(model):
            self._client.get_registered_model(model)
            out: list[Any] = []
            token = None
            while True:
                page = self._client.search_model_versions(
                    filter_string=f"name = {_quote(model)}", max_results=10000, page_token=token
                )
                out.extend(page)
                token = page.token
                if not token:
                    return out

    def stage_holders(self, model: str, stage: str) -> tuple[str, ...]:
        """The versions in a legacy stage now (usually zero or one), lowest first."""
        holders = [str(v.version) for v in self._versions(model) if v.current_stage == stage]
        return tuple(sorted(holders, key=int))

    def set_alias(self, model: str, alias: str, version: str) -> None:
        """Point the alias at the version; doing it again is harmless."""
        self._model_version(model, version)
        with self._errors(model, version):
            self._client.set_registered_model_alias(model, alias, str(version))

    def delete_alias(self, model: str, alias: str) -> None:
        """Remove the alias from the model; removing an absent alias is harmless."""
        if self.alias_holder(model, alias) is None:
            return
        with self._errors(model):
            self._client.delete_registered_model_alias(model, alias)

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        """Move the version to a legacy stage, archiving the previous holders if asked."""
        if stage not in STAGES:
            raise UnknownModel(f"{stage!r} is not a stage; stages are {', '.join(STAGES)}")
        self._model_version(model, version)
        with self._errors(model, version), warnings.catch_warnings():
            # Stages are deprecated in MLflow but still what many teams deploy from.
            warnings.simplefilter("ignore", FutureWarning)
            self._client.transition_model_version_stage(
                model, str(version), stage, archive_existing_versions=archive_existing
            )

    def set_version_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        """Write provenance tags on the model version."""
        self._model_version(model, version)
        with self._errors(model, version):
            for key, value in tags.items():
                self._client.set_model_version_tag(model, str(version), key, str(value))

    def assignments(self, models: tuple[str, ...] | None = None) -> tuple[TargetAssignment, ...]:
        """Every alias and non-None stage of the given models (all models when None)."""
        if models is None:
            if self._access.registry_absent:
                return ()
            with self._errors("*"):
                names = []
                token = None
                while True:
                    page = self._client.search_registered_models(max_results=1000, page_token=token)
                    names.extend(m.name for m in page)
                    token = page.token
                    if not token:
                        break
        else:
            names = list(models)
        out: list[TargetAssignment] = []
        for name in names:
            with self._errors(name):
                rm = self._client.get_registered_model(name)
            for alias, version in sorted((rm.aliases or {}).items()):
                out.append(TargetAssignment(name, "alias", alias, str(version)))
            for mv in sorted(self._versions(name), key=lambda v: int(v.version)):
                if mv.current_stage and mv.current_stage != "None":
                    out.append(TargetAssignment(name, "stage", mv.current_stage, str(mv.version)))
        return tuple(out)
