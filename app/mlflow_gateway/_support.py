"""Shared plumbing of the gateway package: fast-failing HTTP settings, error mapping, conversion.

Nothing here imports mlflow at module level: `import mlflow` costs seconds, and Streamlit reruns
page scripts, so the import happens on the first real call.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from app.entities import DatasetInfo, ExperimentInfo, ModelVersionInfo, RunSummary
from app.errors import InvalidQuery, NotFound, StoreUnavailable
from governance.redaction import redact_secrets

# A dashboard must answer "the store is down" in seconds, not after MLflow's default of 7 retries
# with exponential backoff and a 120 s timeout. Operators may still override these variables.
FAST_FAIL_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # Progress bars belong to terminals, not to a dashboard's logs.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}

_CONNECTION_HINTS = (
    "api request to",
    "max retries exceeded",
    "connection refused",
    "failed to establish",
    "name or service not known",
    "unable to open database",
    "could not connect",
    "connection to server",
    "operationalerror",
    "timed out",
    "temporarily_unavailable",
)


# MLflow's own switch against unpickling model files (read by mlflow.sklearn, pyfunc and other
# flavours at load time). Countersign's processes hold the database URL and the signing key, so
# they never load a model, whatever the operator's environment says; the model worker, a
# separate process with none of those, is the only place that does (see app/model_worker).
PICKLE_SWITCH = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"


def forbid_model_deserialisation() -> None:
    """Turn MLflow's pickle deserialisation off in this process (idempotent)."""
    os.environ[PICKLE_SWITCH] = "false"


def apply_fast_fail_env() -> None:
    """Lower MLflow's HTTP retries and timeout unless the operator configured them, and keep
    model deserialisation off (every gateway entry point passes here first)."""
    for name, value in FAST_FAIL_ENV.items():
        os.environ.setdefault(name, value)
    forbid_model_deserialisation()


def require_existing_sqlite(uri: str) -> None:
    """Refuse a SQLite store whose file does not exist instead of letting MLflow create it.

    (The gateway's own store check does this and more, see `_store_check`; this is for code that
    opens the demo store with MLflow's client directly.)

    Raises:
        StoreUnavailable: The URI names a SQLite file that is not there.
    """
    if uri.startswith("sqlite:///") and "?" not in uri:
        path = uri[len("sqlite:///") :]
        if path and path != ":memory:" and not os.path.isfile(path):
            raise StoreUnavailable(
                f"the MLflow store at {uri} does not exist (no such file); check "
                "MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI or run `python -m app.cli seed-demo`"
            )


def redact(uri: str) -> str:
    """The URI without a password, fit for a message."""
    return redact_secrets(uri)


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


@contextmanager
def mlflow_errors(uri: str, what: str = "") -> Iterator[None]:
    """Translate MLflow and driver errors into the product's one-line user-facing errors.

    Args:
        uri: The store being talked to; named in the message (without password).
        what: What was asked, e.g. "model 'x' version 3", for a NotFound message.
    """
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        code = str(getattr(exc, "error_code", "") or "")
        message = str(getattr(exc, "message", "") or exc)
        low = message.lower()
        # MLflow reports some misses (e.g. an unknown alias) as INVALID_PARAMETER_VALUE.
        missing = code == "INVALID_PARAMETER_VALUE" and "not found" in low
        if code == "RESOURCE_DOES_NOT_EXIST" or (missing and "api request to" not in low):
            raise NotFound(
                f"{what or 'the requested item'} was not found in {redact(uri)}"
            ) from None
        if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST") and not any(
            hint in low for hint in _CONNECTION_HINTS
        ):
            raise InvalidQuery(_first_line(message)) from None
        # Everything else (connection refused, timeouts, 5xx, a database that cannot be opened)
        # means the store cannot serve us right now.
        raise StoreUnavailable(_unavailable(uri, message)) from None
    except OSError as exc:
        raise StoreUnavailable(_unavailable(uri, str(exc))) from None
    except Exception as exc:
        # Driver errors (sqlalchemy.exc.OperationalError, requests errors) surface unwrapped
        # from some MLflow code paths; they all mean the store cannot be read.
        name = type(exc).__module__.split(".")[0]
        if name in ("sqlalchemy", "requests", "urllib3", "psycopg", "psycopg2", "pymysql"):
            raise StoreUnavailable(_unavailable(uri, str(exc))) from None
        raise


def _unavailable(uri: str, detail: str) -> str:
    detail = redact_secrets(re.sub(r"\s+", " ", detail).strip())
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return f"the MLflow store at {redact(uri)} cannot be reached or read ({detail})"


def ms_to_dt(ms: int | None) -> datetime | None:
    if ms is None or ms == 0:
        return None
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


def to_run_summary(run: Any) -> RunSummary:
    info, data = run.info, run.data
    return RunSummary(
        run_id=info.run_id,
        experiment_id=str(info.experiment_id),
        run_name=info.run_name or "",
        status=str(info.status),
        user_id=info.user_id or data.tags.get("mlflow.user", ""),
        start_time=ms_to_dt(info.start_time),
        end_time=ms_to_dt(info.end_time),
        params=dict(data.params),
        metrics={k: float(v) for k, v in data.metrics.items()},
        tags=dict(data.tags),
    )


def to_experiment(exp: Any) -> ExperimentInfo:
    return ExperimentInfo(
        experiment_id=str(exp.experiment_id),
        name=exp.name,
        lifecycle_stage=exp.lifecycle_stage,
        artifact_location=exp.artifact_location or "",
        tags=dict(exp.tags or {}),
        creation_time=ms_to_dt(exp.creation_time),
        last_update_time=ms_to_dt(exp.last_update_time),
    )


def to_dataset(dataset_input: Any) -> DatasetInfo:
    ds = dataset_input.dataset
    tags = {t.key: t.value for t in (dataset_input.tags or [])}
    return DatasetInfo(
        name=ds.name,
        digest=ds.digest,
        source_type=ds.source_type,
        source=ds.source,
        context=tags.get("mlflow.data.context", ""),
        schema=ds.schema or "",
        profile=ds.profile or "",
    )


def model_id_of(mv: Any) -> str:
    """The LoggedModel id of a ModelVersion, or "" for a version registered from a path.

    MLflow fills `ModelVersion.model_id` only on some stores (file stores and servers do, SQLite
    does not); a version registered from a LoggedModel always has the source `models:/m-<id>`.
    """
    found = getattr(mv, "model_id", None)
    if found:
        return str(found)
    return model_id_of_source(getattr(mv, "source", ""))


def model_id_of_source(source: str | None) -> str:
    """The LoggedModel id in a version's source `models:/m-<id>[/...]`, or ""."""
    source = str(source or "")
    if source.startswith("models:/m-"):
        return source[len("models:/") :].split("/", 1)[0]
    return ""


def to_version(mv: Any, author: str) -> ModelVersionInfo:
    return ModelVersionInfo(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id or "",
        source=mv.source or "",
        status=str(mv.status or ""),
        stage=str(mv.current_stage or "None"),
        description=mv.description or "",
        aliases=tuple(sorted(mv.aliases or ())),
        tags=dict(mv.tags or {}),
        creation_time=ms_to_dt(mv.creation_timestamp),
        last_updated_time=ms_to_dt(mv.last_updated_timestamp),
        author=author,
        model_id=model_id_of(mv),
    )
