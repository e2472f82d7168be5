"""Where a batch comes from: a CSV or Parquet file, a folder of them, or a data set logged to
MLflow (`runs:/RUN_ID/path/in/run.parquet`).

Every source is read within the data limits (`app.bootstrap.data_limits`); anything else
(another URI scheme, a path that climbs out of the run's artifacts, an unknown file type) is one
clear message. A folder contributes its CSV and Parquet files in name order, not its subfolders.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from app.errors import InvalidInput

SUFFIXES = (".csv", ".parquet", ".pq")
MAX_FOLDER_FILES = 10_000
RUN_ID = re.compile(r"^[0-9a-zA-Z_-]{1,64}$")
# A date in a file name (batch-2026-12-01.parquet, 20261201.csv) is the batch's as-of time.
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?:[T_ ](\d{2})[:-]?(\d{2}))?(?!\d)")


@dataclass(frozen=True)
class Source:
    """One batch source: `kind` is "file" (a local path) or "run" (an MLflow run artifact)."""

    text: str  # as given (what the batch row records)
    kind: str
    path: str  # the local path, or the artifact path inside the run
    run_id: str = ""

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


def parse(text: str) -> Source:
    """One source string: a local path, `file://` URI or `runs:/RUN_ID/path`.

    Raises:
        InvalidInput: An unsupported scheme, a malformed run URI or an unsupported file type.
    """
    raw = (text or "").strip()
    if not raw:
        raise InvalidInput("--current needs a file, a folder or a runs:/ URI")
    if raw.startswith("runs:/"):
        return _run_source(raw)
    if raw.startswith("file:"):
        parts = urlsplit(raw)
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(f"{raw}: only local file:// URIs are supported")
        return Source(raw, "file", unquote(parts.path))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", raw):
        scheme = raw.split(":", 1)[0]
        raise InvalidInput(
            f"{scheme}:// sources are not supported: use a local path, file:// or "
            "runs:/RUN_ID/path (a data set logged to MLflow)"
        )
    return Source(raw, "file", raw)


def _run_source(raw: str) -> Source:
    rest = raw[len("runs:/") :].lstrip("/")
    run_id, _, artifact = rest.partition("/")
    if not RUN_ID.match(run_id) or not artifact:
        raise InvalidInput(f"{raw}: expected runs:/RUN_ID/path/to/data.parquet")
    parts = PurePosixPath(artifact).parts
    if artifact.startswith("/") or ".." in parts or "\\" in artifact:
        raise InvalidInput(f"{raw}: the artifact path must stay inside the run's artifacts")
    if not artifact.lower().endswith(SUFFIXES):
        raise InvalidInput(f"{raw}: only CSV and Parquet data sets can be monitored")
    return Source(raw, "run", artifact, run_id)


def expand(texts: Iterable[str]) -> list[Source]:
    """Every source named, a folder replaced by its CSV and Parquet files in name order.

    Raises:
        InvalidInput: A missing file or folder, a folder without data files, a file of another
            type, or a folder with more than MAX_FOLDER_FILES data files.
    """
    out: list[Source] = []
    for text in texts:
        source = parse(text)
        if source.kind == "run":
            out.append(source)
            continue
        path = Path(source.path).expanduser()
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES
            )
            if not files:
                raise InvalidInput(f"{path}: the folder holds no CSV or Parquet file")
            if len(files) > MAX_FOLDER_FILES:
                raise InvalidInput(
                    f"{path}: {len(files)} data files; at most {MAX_FOLDER_FILES} per run"
                )
            out.extend(Source(str(p), "file", str(p)) for p in files)
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise InvalidInput(f"{path}: only CSV (.csv) and Parquet (.parquet) files")
            out.append(Source(source.text, "file", str(path)))
        else:
            raise InvalidInput(f"{source.text}: no such file or folder")
    return out


def as_of_from_name(name: str) -> datetime | None:
    """The date (and optional HH:MM) in a file name as UTC, or None."""
    match = _NAME_DATE.search(name)
    if not match:
        return None
    year, month, day, hour, minute = (int(g) if g else 0 for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, tzinfo=UTC)
    except ValueError:
        return None


def parse_as_of(text: str | None, default: Callable[[], datetime]) -> datetime:
    """`--as-of`: an ISO 8601 date or time (UTC when it names no offset), else `default()`.

    Raises:
        InvalidInput: Not an ISO 8601 date or time.
    """
    if not text:
        return default()
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"--as-of {text!r} is not an ISO 8601 date or time") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
