"""Protocols the outside world implements for the workflow.

`app/mlflow_gateway` implements ModelRegistry over MLflow; tests use in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

STAGES = ("None", "Staging", "Production", "Archived")


@dataclass(frozen=True)
class RegistryVersion:
    """What the workflow needs to know about one model version."""

    model: str
    version: str
    run_id: str
    run_author: str  # the source run's `mlflow.user`; empty when unknown
    stage: str
    aliases: tuple[str, ...]
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    # MLflow 3: the LoggedModel the version was registered from ("" before MLflow 3), and its
    # lineage as JSON-ready data: {"logged_model": {...} | None, "datasets": [...]}.
    model_id: str = ""
    lineage: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetAssignment:
    """One alias or stage as the registry holds it now: (model, kind, target) -> version."""

    model: str
    kind: str  # "alias" or "stage"
    target: str
    version: str


class ModelRegistry(Protocol):
    """The model registry as the workflow sees it. Every method may raise RegistryUnavailable."""

    def get_version(self, model: str, version: str) -> RegistryVersion:
        """One version with its metrics, params and author (its run's, overlaid by those of the
        LoggedModel it was registered from) and its lineage.

        Raises:
            UnknownModel: No such model or version.
            RegistryUnavailable: The registry cannot be reached.
        """
        ...

    def alias_holder(self, model: str, alias: str) -> str | None:
        """The version the alias points to now, or None."""
        ...

    def stage_holders(self, model: str, stage: str) -> tuple[str, ...]:
        """The versions in a legacy stage now (usually zero or one)."""
        ...

    def set_alias(self, model: str, alias: str, version: str) -> None:
        """Point the alias at the version; doing it again is harmless."""
        ...

    def delete_alias(self, model: str, alias: str) -> None:
        """Remove the alias from the model; removing an absent alias is harmless."""
        ...

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        """Move the version to a legacy stage, archiving the previous holders if asked."""
        ...

    def set_version_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        """Write provenance tags on the model version."""
        ...

    def assignments(self, models: tuple[str, ...] | None = None) -> tuple[TargetAssignment, ...]:
        """Every alias and non-None stage of the given models (all models when None)."""
        ...


class Clock(Protocol):
    """The source of time; always timezone-aware UTC. Tests inject a fixed clock."""

    def now(self) -> datetime: ...


class PasswordHasher(Protocol):
    """Hashes and checks passwords (argon2 in production)."""

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


# --- optional evidence ---------------------------------------------------------------------------


class EvidenceSource(Protocol):
    """Summaries of drift and feature-importance reports, when they exist.

    Return values are pinned into the evidence snapshot (canonical JSON): they must be
    deterministic for the same report, JSON-serialisable, finite and small (no HTML, no frames).
    """

    def drift_summary(self, model: str, version: str) -> Mapping[str, Any] | None:
        """The latest drift summary of the version, or None when no report exists.

        Expected keys: `share_drifted` (float in [0, 1]; the `max_drift_share` gate reads it),
        `drifted_columns` (list of names), `report_sha256` (pins the full report).
        """
        ...

    def importance_summary(self, model: str, version: str) -> Mapping[str, Any] | None:
        """Top feature importances ({"top": [[feature, value], ...], ...}), or None."""
        ...
