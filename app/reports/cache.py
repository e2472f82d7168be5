"""A disk cache for drift verdicts and Evidently reports, keyed by content hash.

The key covers the data (column names, dtypes and values of both frames), the configuration and
the Evidently version, so a restart or another replica sharing the data dir finds the same entry
and an upgrade of Evidently never serves a stale verdict. Writes are atomic (temp file + rename).

The cache is capped in bytes (`COUNTERSIGN_REPORT_CACHE_MAX_MB`): a hit refreshes an entry's
modification time, and after each write the least recently used entries are removed until the
folder fits again. Replicas sharing the folder share the cap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xxhash

from app.entities import ColumnDrift, DriftConfig, DriftResult
from app.reports.verdict import compute_drift, config_hash, evidently_version

MB = 1024 * 1024
DEFAULT_MAX_MB = 300
# Reports cached before their data was escaped end in plain ".html": never served again (the
# size budget removes them in time, least recently used first).
REPORT_SUFFIX = ".safe.html"


def touch(path: Path) -> None:
    """Mark an entry as just used (least-recently-used order is modification time)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def enforce_budget(root: Path, max_bytes: int, keep: Path | None = None) -> int:
    """Remove the least recently used files under `root` until they fit in `max_bytes`.

    `keep` (the entry just written) is never removed, even when it alone is over the budget.
    Returns the number of bytes removed.
    """
    entries = []
    for path in Path(root).rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.name.startswith(".tmp-"):
                stat = path.stat()
                entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    removed = 0
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total - removed <= max_bytes:
            break
        if keep is not None and path == keep:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed += size
    return removed


def frame_digest(frame: pd.DataFrame, h: Any = None) -> str:
    """A content hash of a frame: names, dtypes and values (the index is not part of the data).

    XXH3-128 runs at memory speed (80 MB in ~15 ms), which keeps a cache hit on 100k x 50
    frames well under 0.2 s; it is a content key, not a security boundary. Pass another
    hashlib-style object as `h` (e.g. `hashlib.sha256()`) for a digest that is one.
    """
    h = xxhash.xxh3_128() if h is None else h
    header = [[str(c) for c in frame.columns], [str(t) for t in frame.dtypes], list(frame.shape)]
    h.update(json.dumps(header).encode("utf-8"))
    for name in frame.columns:
        column = frame[name]
        values = column.to_numpy() if isinstance(column.dtype, np.dtype) else None
        if values is not None and values.dtype.kind in "biufcmM":
            h.update(np.ascontiguousarray(values).view(np.uint8))
        else:
            hashed = pd.util.hash_pandas_object(column, index=False).to_numpy()
            h.update(hashed.tobytes())
    return h.hexdigest()


def cache_key(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig) -> str:
    parts = [frame_digest(reference), frame_digest(current), config_hash(config)]
    parts.append(evidently_version())
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def result_to_json(result: DriftResult) -> str:
    return json.dumps(asdict(result), sort_keys=True)


def result_from_json(text: str) -> DriftResult:
    data = json.loads(text)
    data["columns"] = tuple(ColumnDrift(**c) for c in data["columns"])
    return DriftResult(**data)


class DriftCache:
    """Verdicts as JSON and reports as HTML under one directory (e.g. `settings.cache_dir`)."""

    def __init__(self, root: Path, max_mb: int = DEFAULT_MAX_MB) -> None:
        self.root = Path(root) / "drift"
        self.max_bytes = max_mb * MB

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / key[:2] / f"{key}{suffix}"

    def get_result(self, key: str) -> DriftResult | None:
        path = self._path(key, ".json")
        try:
            result = result_from_json(path.read_text(encoding="utf-8"))
            touch(path)
            return result
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError):
            path.unlink(missing_ok=True)  # a damaged entry is recomputed, never served
            return None

    def put_result(self, key: str, result: DriftResult) -> None:
        path = self._path(key, ".json")
        _write_atomic(path, result_to_json(result).encode("utf-8"))
        enforce_budget(self.root, self.max_bytes, keep=path)

    def html_path(self, key: str) -> Path | None:
        path = self._path(key, REPORT_SUFFIX)
        if not path.is_file():
            return None
        touch(path)
        return path

    def put_html(self, key: str, html: str) -> Path:
        path = self._path(key, REPORT_SUFFIX)
        _write_atomic(path, html.encode("utf-8"))
        enforce_budget(self.root, self.max_bytes, keep=path)
        return path


def cached_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig | None,
    cache_dir: Path,
    max_mb: int = DEFAULT_MAX_MB,
) -> DriftResult:
    """The verdict from the disk cache, computed and stored on a miss."""
    config = config or DriftConfig()
    cache = DriftCache(cache_dir, max_mb)
    key = cache_key(reference, current, config)
    hit = cache.get_result(key)
    if hit is not None:
        return hit
    result = compute_drift(reference, current, config)
    cache.put_result(key, result)
    return result


def cached_report_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig | None,
    cache_dir: Path,
    max_mb: int = DEFAULT_MAX_MB,
) -> Path:
    """The path of Evidently's full HTML report, built (slowly) once per content hash."""
    from app.reports.evidently_report import report_html

    config = config or DriftConfig()
    cache = DriftCache(cache_dir, max_mb)
    key = cache_key(reference, current, config)
    path = cache.html_path(key)
    if path is not None:
        return path
    return cache.put_html(key, report_html(reference, current, config))
