"""Artifacts of runs and model versions: where they live, whether this server can reach them,
and downloads that refuse what is larger than the configured bound before a byte is fetched.

A version can exist in the registry while its files live on another machine (a
`file:///C:/Users/...` path logged on a laptop) or behind an artifact server that does not
answer. Those cases raise `ArtifactsUnreachable` naming the URI, never "not found".
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from app.errors import ArtifactsUnreachable, LimitExceeded, NotFound
from app.mlflow_gateway._support import model_id_of, redact

MB = 1024 * 1024
# A model folder is a handful of files; thousands means something else was logged there.
MAX_MODEL_FILES = 2_000
_WINDOWS_DRIVE = re.compile(r"^/?[A-Za-z]:[/\\]")
_REMOTE_ERROR_MODULES = ("requests", "urllib3", "botocore", "boto3", "google", "azure")


def local_path(uri: str) -> Path | None:
    """The filesystem path of a `file:` (or scheme-less) URI; None for remote stores."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or _WINDOWS_DRIVE.match(uri) or len(parsed.scheme) == 1:
        return Path(uri)
    return None


def check_reachable(uri: str, *, run_root: bool = False) -> None:
    """Refuse a local artifact location that cannot be on this server.

    A Windows drive path on another operating system is never reachable. Otherwise a run's
    artifact folder may simply not exist yet (MLflow creates it on the first logged file), so
    for `run_root=True` a missing folder is only unreachable when its experiment's parent
    folder is missing too (`<root>/<experiment>/<run_id>/artifacts`).

    Raises:
        ArtifactsUnreachable: The location is not on this server.
    """
    path = local_path(uri)
    if path is None:
        return
    text = str(path).replace("\\", "/")
    if _WINDOWS_DRIVE.match(text) and os.name != "nt":
        raise ArtifactsUnreachable(redact(uri), "a Windows path on another machine")
    if path.exists():
        return
    if run_root and len(path.parents) > 3 and path.parents[2].is_dir():
        return
    raise ArtifactsUnreachable(redact(uri), "no such folder on this server")


@contextmanager
def artifact_errors(uri: str, what: str) -> Iterator[None]:
    """Map failures while reading artifacts at `uri` to one clear error.

    A missing path is NotFound; anything else (connection refused, timeouts, a scheme this
    server cannot resolve, a permission error) means the artifacts are not reachable from here.
    """
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (ArtifactsUnreachable, LimitExceeded, NotFound):
        raise
    except MlflowException as exc:
        if str(getattr(exc, "error_code", "")) == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(f"{what} does not exist in {redact(uri)}") from None
        raise ArtifactsUnreachable(redact(uri), _short(str(exc.message))) from None
    except FileNotFoundError:
        raise NotFound(f"{what} does not exist in {redact(uri)}") from None
    except OSError as exc:
        raise ArtifactsUnreachable(redact(uri), _short(str(exc))) from None
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in _REMOTE_ERROR_MODULES:
            raise ArtifactsUnreachable(redact(uri), _short(str(exc))) from None
        raise


def _short(detail: str) -> str:
    detail = re.sub(r"\s+", " ", detail).strip()
    return detail if len(detail) <= 160 else detail[:157] + "..."


def check_size(what: str, size: int | None, max_mb: int, setting: str) -> None:
    """Refuse an artifact larger than `max_mb` (the message names the setting, if any).

    Raises:
        LimitExceeded: The artifact is larger than the limit.
    """
    if size is not None and size > max_mb * MB:
        hint = f" (raise {setting} to allow more)" if setting else ""
        raise LimitExceeded(
            f"{what} is {size / MB:.1f} MB; artifacts are read up to {max_mb} MB{hint}"
        )


def run_root(client: Any, run_id: str) -> str:
    """The run's artifact root URI, checked for reachability."""
    uri = str(client.get_run(run_id).info.artifact_uri or "")
    check_reachable(uri, run_root=True)
    return uri


def download_run_file(
    client: Any, run_id: str, uri: str, path: str, dst_dir: Path, max_mb: int, setting: str
) -> Path:
    """Download one file of the run (artifact root `uri`) after checking its listed size.

    Raises:
        NotFound: The run has no such file.
        LimitExceeded: The file is larger than `max_mb` (nothing is downloaded).
        ArtifactsUnreachable: The run's artifact store cannot be read from here.
    """
    with artifact_errors(uri, f"artifact {path!r}"):
        listed = client.list_artifacts(run_id, posixpath.dirname(path) or None)
        match = next((i for i in listed if i.path == path and not i.is_dir), None)
        if match is None:
            raise NotFound(f"artifact {path!r} does not exist in {redact(uri)}")
        check_size(path, match.file_size, max_mb, setting)
        Path(dst_dir).mkdir(parents=True, exist_ok=True)
        local = Path(client.download_artifacts(run_id, path, str(dst_dir)))
    _check_local(local, path, max_mb, setting)
    return local


def _check_local(local: Path, what: str, max_mb: int, setting: str) -> None:
    # Some stores list no size; what arrived is checked (and removed when too large).
    size = local.stat().st_size if local.is_file() else 0
    try:
        check_size(what, size, max_mb, setting)
    except LimitExceeded:
        local.unlink(missing_ok=True)
        raise


def model_files_uri(client: Any, mv: Any) -> str:
    """Where the version's model folder (MLmodel and the model files) lives.

    MLflow 3 versions point at a LoggedModel; older ones at a run artifact path. `models:/`
    and `runs:/` URIs are resolved through our client: MLflow's resolution would go through
    its global URIs (and could create ./mlflow.db).

    Raises:
        NotFound: The version's files cannot be located.
    """
    model_id = model_id_of(mv)
    base = str(client.get_logged_model(model_id).artifact_location if model_id else mv.source)
    if base.startswith("runs:/"):
        run_id, _, sub = base[len("runs:/") :].partition("/")
        base = run_root(client, run_id).rstrip("/") + "/" + sub
    elif base.startswith("models:/"):
        raise NotFound(f"the model files of {mv.name} v{mv.version} cannot be located")
    check_reachable(base)
    return base.rstrip("/")


def _walk(repo: Any, path: str | None, budget: list[int]) -> Iterator[Any]:
    for item in repo.list_artifacts(path):
        budget[0] -= 1
        if budget[0] < 0:
            raise LimitExceeded(f"the model folder holds more than {MAX_MODEL_FILES} files")
        if item.is_dir:
            yield from _walk(repo, item.path, budget)
        else:
            yield item


def download_tree(uri: str, dst_dir: Path, tracking_uri: str, max_mb: int, setting: str) -> Path:
    """Download a folder of artifacts after checking the listed sizes add up to at most max_mb.

    Raises:
        LimitExceeded: The folder is larger than the limit (nothing is downloaded).
        ArtifactsUnreachable: The store cannot be read from here.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    with artifact_errors(uri, "the model files"):
        repo = get_artifact_repository(uri, tracking_uri=tracking_uri)
        files = list(_walk(repo, None, [MAX_MODEL_FILES]))
        if not files:
            raise NotFound(f"the model files do not exist in {redact(uri)}")
        check_size("the model folder", sum(f.file_size or 0 for f in files), max_mb, setting)
        Path(dst_dir).mkdir(parents=True, exist_ok=True)
        local = Path(repo.download_artifacts("", dst_path=str(dst_dir)))
    total = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
    check_size("the model folder", total, max_mb, setting)
    return local
