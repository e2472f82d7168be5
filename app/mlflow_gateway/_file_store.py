"""`file:` stores (an `mlruns/` folder): read as they are, never written behind the user's back.

MLflow 3.17 refuses a file store unless `MLFLOW_ALLOW_FILE_STORE=true`; Countersign sets it for
its own process when the tracking or registry URI is a file store (a `file:` URI or a plain
path), and with a file registry also the process's default `MLFLOW_TRACKING_URI` when unset
(see `allow_file_stores`). MLflow's FileStore creates `.trash` (tracking) and `models/`
(registry) when they are missing; Countersign checks first, so that opening a store never adds
a folder to it: a store without `.trash` is refused with the one command that fixes it, and one
without `models/` has no registered models, so the registry is read as empty without asking
MLflow.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from app.errors import StoreUnavailable
from app.mlflow_gateway._store_check import scheme

ALLOW_ENV = "MLFLOW_ALLOW_FILE_STORE"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
TRASH, MODELS = ".trash", "models"
# Folders MLflow keeps at the root of a store that are not experiments.
NOT_EXPERIMENTS = frozenset({TRASH, MODELS})
MAX_NOTED = 20  # folders named in a note; more are counted


def is_file_store(uri: str) -> bool:
    return scheme(uri) == "file"


def store_path(uri: str) -> Path:
    """The folder of a `file:` URI or plain path."""
    if uri.startswith("file:"):
        parsed = urlparse(uri)
        return Path(
            unquote(parsed.path if not parsed.netloc else f"//{parsed.netloc}{parsed.path}")
        )
    return Path(uri).expanduser()


def allow_file_stores(tracking_uri: str, registry_uri: str) -> None:
    """Opt this process in to MLflow's file stores when the tracking or registry URI is one.

    MLflow's file registry reads the LoggedModel of a version through a client built on the
    process's *default* tracking URI (its own TODO in `_get_file_model_version_from_dir`); unset,
    that default is `sqlite:///mlflow.db`, created in the working directory on first use. With a
    file registry the default is therefore set to the configured tracking store, unless the
    process has one already (Countersign serves one tracking store per process).
    """
    if is_file_store(tracking_uri) or is_file_store(registry_uri):
        os.environ[ALLOW_ENV] = "true"
    if is_file_store(registry_uri):
        os.environ.setdefault(TRACKING_ENV, tracking_uri)


def require_readable(uri: str, *, tracking: bool) -> None:
    """Refuse a file store that is missing, or that MLflow would add `.trash` to on opening.

    Raises:
        StoreUnavailable: The message names the folder and the fix.
    """
    path = store_path(uri)
    if not path.is_dir():
        raise StoreUnavailable(
            f"the MLflow file store at {uri} does not exist (no such folder); check "
            "MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI"
        )
    if tracking and not (path / TRASH).is_dir():
        raise StoreUnavailable(
            f"the MLflow file store at {path} has no {TRASH} folder, which MLflow's client "
            "creates when it opens a store; Countersign does not add anything to your store. "
            f"Create the empty folder once (`mkdir {path / TRASH}`) and reload."
        )


def registry_absent(uri: str) -> bool:
    """True when the file store has no `models/` folder: it holds no registered models."""
    return is_file_store(uri) and not (store_path(uri) / MODELS).is_dir()


def skipped_experiments(uri: str) -> list[str]:
    """A note per experiment folder MLflow skips because it lacks meta.yaml."""
    root = store_path(uri)
    try:
        folders = sorted(
            p.name
            for p in root.iterdir()
            if p.is_dir() and p.name not in NOT_EXPERIMENTS and not (p / "meta.yaml").is_file()
        )
    except OSError:
        return []
    if not folders:
        return []
    named = ", ".join(repr(f[:64]) for f in folders[:MAX_NOTED])
    more = f" and {len(folders) - MAX_NOTED} more" if len(folders) > MAX_NOTED else ""
    return [
        f"Skipped {len(folders)} experiment folder(s) of the file store without meta.yaml: "
        f"{named}{more}. MLflow cannot read an experiment without it; restore the file to see "
        "its runs."
    ]


def missing_dataset_inputs(uri: str, experiment_id: str, run_id: str) -> int:
    """Data set inputs of the run whose data set folder is gone (MLflow skips them silently)."""
    import yaml

    root = store_path(uri)
    inputs = root / str(experiment_id) / run_id / "inputs"
    datasets = root / str(experiment_id) / "datasets"
    missing = 0
    try:
        entries = list(inputs.iterdir()) if inputs.is_dir() else []
        for entry in entries:
            meta = yaml.safe_load((entry / "meta.yaml").read_text(encoding="utf-8")) or {}
            source = str(meta.get("source_id") or "")
            if meta.get("source_type") in (1, "DATASET") and source:
                missing += not (datasets / source).is_dir()
    except (OSError, yaml.YAMLError):
        return 0
    return missing
