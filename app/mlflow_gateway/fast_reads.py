"""Our entities from the read-only SQL fast path (`_sql.py`), shaped exactly as the MLflow client
path shapes them (`_support.to_version`, `to_experiment`, the gateway's `_model`).

The gateway asks `FastReads` first; it answers None when the store is not a SQL database at a
verified schema revision, or when a query fails (logged), and the gateway then asks MLflow's
client. The integration tests compare both paths entity by entity on the same stores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from app.entities import ExperimentInfo, ModelVersionInfo, RegisteredModelInfo, RunSummary
from app.errors import NotFound
from app.mlflow_gateway._sql import SqlRegistryReader, SqlRunsReader
from app.mlflow_gateway._support import model_id_of_source, ms_to_dt, redact

Authors = Callable[[list[str]], dict[str, str]]
T = TypeVar("T")
log = logging.getLogger(__name__)


class FastReads:
    """The SQL fast path of the gateway's registry and experiment reads."""

    def __init__(
        self, runs: SqlRunsReader, registry: SqlRegistryReader, author: Callable[[str], str]
    ) -> None:
        """`author(run_id)` is the client path's author lookup, for a tracking store that SQL
        cannot read (the registry and the tracking store may be different databases)."""
        self._runs = runs
        self._registry = registry
        self._author = author
        self._authors: dict[str, str] = {}

    def _try(self, reader: Any, call: Callable[[], T]) -> T | None:
        if not reader.usable():
            return None
        try:
            return call()
        except NotFound:  # a missing model is an answer
            raise
        except Exception as exc:
            log.warning("SQL fast path failed, using MLflow's client: %s", exc)
            return None

    def authors(self, run_ids: list[str]) -> dict[str, str]:
        """Authors of many runs: one SELECT on a SQL tracking store, else one lookup each."""
        wanted = [r for r in dict.fromkeys(run_ids) if r and r not in self._authors]
        if wanted:
            found = self._try(self._runs, lambda: self._runs.authors(wanted))
            if found is None:
                found = {r: self._author(r) for r in wanted}
            self._authors.update(found)  # a run that does not exist stays unknown: ""
        return {r: self._authors.get(r, "") for r in run_ids}

    def experiments(self) -> list[ExperimentInfo] | None:
        return self._try(self._runs, lambda: experiments(self._runs))

    def recent_runs(self, experiment_ids: list[str], n: int) -> list[RunSummary] | None:
        """The n most recently started active runs of the experiments."""
        ids = self._try(self._runs, lambda: self._runs.recent(experiment_ids, n))
        return None if ids is None else self.runs(ids)

    def runs(self, run_ids: list[str]) -> list[RunSummary] | None:
        """The runs in the given order; None when one is missing (the client path then says
        which, as it always has)."""
        found = self._try(self._runs, lambda: run_summaries(self._runs, run_ids))
        if found is None or set(found) != set(run_ids):
            return None
        return [found[r] for r in run_ids]

    def counts(self) -> tuple[int, int] | None:
        """(registered models, versions)."""
        return self._try(self._registry, self._registry.counts)

    def registered_models(self) -> list[RegisteredModelInfo] | None:
        return self._try(self._registry, lambda: registered_models(self._registry, self.authors))

    def registered_model(self, name: str) -> RegisteredModelInfo | None:
        return self._try(
            self._registry, lambda: registered_model(self._registry, self.authors, name)
        )

    def version_files(self, name: str, version: str) -> ModelVersionInfo | None:
        """Where a version's model files are (its source), without its tags or aliases; None
        when the fast path cannot say (the client path then answers, NotFound included)."""
        if not version.isdigit():
            return None
        rows = self._try(self._registry, lambda: self._registry.version(name, version))
        return _versions(rows, {}, {}, lambda _ids: {})[0] if rows else None

    def versions(self, name: str) -> list[ModelVersionInfo] | None:
        return self._try(self._registry, lambda: versions(self._registry, self.authors, name))


def _versions(
    rows: Iterable[tuple[Any, ...]],
    aliases: dict[tuple[str, str], list[str]],
    tags: dict[tuple[str, str], dict[str, str]],
    authors: Authors,
) -> list[ModelVersionInfo]:
    rows = list(rows)
    by_run = authors([str(r[7]) for r in rows if r[7]])
    out = []
    for name, version, created, updated, description, stage, source, run_id, status in rows:
        key = (name, str(version))
        out.append(
            ModelVersionInfo(
                name=name,
                version=str(version),
                run_id=run_id or "",
                source=source or "",
                status=str(status or ""),
                stage=str(stage or "None"),
                description=description or "",
                aliases=tuple(sorted(aliases.get(key, ()))),
                tags=tags.get(key, {}),
                creation_time=ms_to_dt(created),
                last_updated_time=ms_to_dt(updated),
                author=by_run.get(run_id or "", ""),
                model_id=model_id_of_source(source),
            )
        )
    return out


def _alias_index(rows: Iterable[tuple[Any, ...]]) -> dict[tuple[str, str], list[str]]:
    held: dict[tuple[str, str], list[str]] = {}
    for name, alias, version in rows:
        held.setdefault((name, str(version)), []).append(alias)
    return held


def _tag_index(reader: SqlRegistryReader, keys: list[tuple[str, int]]) -> dict[Any, Any]:
    found: dict[tuple[str, str], dict[str, str]] = {}
    for name, version, key, value in reader.version_tags(keys):
        found.setdefault((name, str(version)), {})[key] = value
    return found


def registered_models(
    reader: SqlRegistryReader, authors: Authors, name: str | None = None
) -> list[RegisteredModelInfo]:
    """Every registered model (or the one named) with its tags, aliases and, per stage, its
    newest version (MLflow's `latest_versions`)."""
    models = reader.models(name)
    alias_rows = reader.aliases(name)
    model_tags: dict[str, dict[str, str]] = {}
    for model, key, value in reader.model_tags(name):
        model_tags.setdefault(model, {})[key] = value
    latest = reader.latest_versions(name)
    versions = _versions(
        sorted(latest, key=lambda r: (r[0], int(r[1]))),
        _alias_index(alias_rows),
        _tag_index(reader, [(r[0], int(r[1])) for r in latest]),
        authors,
    )
    by_model: dict[str, list[ModelVersionInfo]] = {}
    for version in versions:
        by_model.setdefault(version.name, []).append(version)
    aliases: dict[str, dict[str, str]] = {}
    for model, alias, number in alias_rows:
        aliases.setdefault(model, {})[alias] = str(number)
    return [
        RegisteredModelInfo(
            name=model,
            description=description or "",
            tags=model_tags.get(model, {}),
            aliases=aliases.get(model, {}),
            latest_versions=tuple(by_model.get(model, ())),
            creation_time=ms_to_dt(created),
            last_updated_time=ms_to_dt(updated),
        )
        for model, description, created, updated in models
    ]


def registered_model(reader: SqlRegistryReader, authors: Authors, name: str) -> RegisteredModelInfo:
    """One registered model. Raises NotFound (with the client path's message)."""
    found = registered_models(reader, authors, name)
    if not found:
        raise NotFound(f"model {name!r} was not found in {redact(reader.uri)}")
    return found[0]


def versions(reader: SqlRegistryReader, authors: Authors, name: str) -> list[ModelVersionInfo]:
    """Every version of the model with its aliases, tags and author. Raises NotFound."""
    if not reader.models(name):
        raise NotFound(f"model {name!r} was not found in {redact(reader.uri)}")
    rows = reader.versions(name)
    return _versions(
        rows,
        _alias_index(reader.aliases(name)),
        _tag_index(reader, [(r[0], int(r[1])) for r in rows]),
        authors,
    )


def experiments(reader: SqlRunsReader) -> list[ExperimentInfo]:
    """The active experiments, as `search_experiments` returns them."""
    return [
        ExperimentInfo(
            experiment_id=str(exp_id),
            name=name,
            lifecycle_stage=stage,
            artifact_location=location or "",
            tags=dict(tags),
            creation_time=ms_to_dt(created),
            last_update_time=ms_to_dt(updated),
        )
        for exp_id, name, stage, location, created, updated, tags in reader.experiments()
    ]


def run_summaries(reader: SqlRunsReader, run_ids: list[str]) -> dict[str, RunSummary]:
    """RunSummary by run id, as `to_run_summary` makes them from `get_run`."""
    rows = reader.by_ids(run_ids)
    params: dict[str, dict[str, str]] = {}
    metrics: dict[str, dict[str, float]] = {}
    tags: dict[str, dict[str, str]] = {}
    for run_id, key, value in rows["params"]:
        params.setdefault(run_id, {})[key] = value
    for run_id, key, value, is_nan in rows["metrics"]:
        metrics.setdefault(run_id, {})[key] = float("nan") if is_nan else float(value)
    for run_id, key, value in rows["tags"]:
        tags.setdefault(run_id, {})[key] = value
    return {
        run_id: RunSummary(
            run_id=run_id,
            experiment_id=str(experiment_id),
            run_name=name or "",
            status=str(status),
            user_id=user_id or tags.get(run_id, {}).get("mlflow.user", ""),
            start_time=ms_to_dt(start),
            end_time=ms_to_dt(end),
            params=params.get(run_id, {}),
            metrics=metrics.get(run_id, {}),
            tags=tags.get(run_id, {}),
        )
        for run_id, name, status, user_id, start, end, experiment_id in rows["runs"]
    }
