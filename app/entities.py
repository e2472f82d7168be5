"""Frozen dataclasses that cross module boundaries.

Only these (and pandas DataFrames) leave the gateways: never MLflow, Evidently or ORM objects.
They pickle cheaply, which keeps `st.cache_data` fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
