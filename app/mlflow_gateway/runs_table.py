"""The all-runs table (every param, metric and tag of every run), fast at 10,000 runs.

Paths, named in the `path` string returned with the table:

- "sql": read-only SQL over MLflow's own tables when the tracking store is a database we can
  reach at a verified schema revision (see `_sql.py`): a full read.
- "sql-incremental": the change marker moved (run count, latest start or end time) or the TTL
  passed: the runs rows are read alone, and params, metrics and tags only for runs that are new,
  changed status or end time, or are not finished. A full read happens every FULL_RELOAD_S,
  which also catches tags or metrics added to runs that had already finished.
- "api" / "api-incremental": MLflow's search API otherwise (HTTP stores, unknown revisions).
  Finished runs are kept in a local Parquet cache under `settings.cache_dir`; a refresh asks
  only for runs started recently (new) and runs that were not finished last time.
- "memory": the same call repeated with nothing new is answered from memory (the SQL marker is
  unchanged and younger than `settings.cache_ttl_s`, or the API refresh found nothing new).

Known limit of the API path: a run deleted after it was cached stays until the cache folder
under `cache_dir/runs_table/` is removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.mlflow_gateway._frames import FINISHED, build_table, combine, long_frame, runs_frame
from app.mlflow_gateway._sql import SqlRunsReader
from app.settings import Settings

log = logging.getLogger(__name__)

KINDS = ("runs", "params", "metrics", "tags")
# Runs may be created by clients whose clocks lag ours: look back this far for "new" runs.
NEW_RUN_WINDOW_MS = 10 * 60 * 1000
API_PAGE = 1000  # small pages: each request stays well inside the HTTP timeout
# SQL path: re-read everything at least this often (catches tags or metrics added to runs that
# had already finished); in between, refreshes are incremental.
FULL_RELOAD_S = 600.0
INCREMENTAL_LIMIT = 2000


@dataclass
class _SqlEntry:
    marker: tuple[Any, ...]
    checked_at: float  # monotonic seconds
    full_at: float  # when the table was last read in full
    state: set[tuple[Any, ...]]  # (run id, status, end time) of the runs it was built from
    table: pd.DataFrame


class RunsTableService:
    """Serves `MlflowGateway.runs_table` and keeps its caches.

    Tables are handed out as shallow copies: pandas 3 copies on write, so a caller that changes
    its table gets its own data and the cached one stays intact, at no cost for readers.
    """

    def __init__(self, client: Callable[[], Any], settings: Settings) -> None:
        self._get_client = client
        self._settings = settings
        self._sql = SqlRunsReader(settings.tracking_uri)
        self._memory: dict[tuple[str, ...], _SqlEntry] = {}
        self._frames: dict[tuple[str, ...], dict[str, pd.DataFrame]] = {}
        self._api_tables: dict[tuple[str, ...], pd.DataFrame] = {}
        self.last_fetched = 0  # runs the last API refresh asked for (observability, tests)

    @property
    def sql_available(self) -> bool:
        return self._sql.usable()

    @property
    def sql(self) -> SqlRunsReader:
        """The read-only SQL reader of the tracking store (check `usable()` first)."""
        return self._sql

    def count_runs(self, experiment_ids: Sequence[str]) -> int:
        if not experiment_ids:
            return 0
        if self._sql.usable():
            return self._sql.count(experiment_ids)
        return len(self.table(experiment_ids)[0])

    def table(
        self, experiment_ids: Sequence[str], force_api: bool = False
    ) -> tuple[pd.DataFrame, str]:
        """The all-runs table of the experiments and the path that served it."""
        key = tuple(sorted({str(e) for e in experiment_ids}))
        if not key:
            return build_table(*_empty_frames()), "memory"
        if not force_api and self._sql.usable():
            try:
                return self._sql_table(key)
            except Exception as exc:  # a failing fast path must not take the page down
                log.warning("runs table: SQL fast path failed, using the API: %s", exc)
        return self._api_table(key)

    # ---- SQL ---------------------------------------------------------------------------------

    def _sql_table(self, key: tuple[str, ...]) -> tuple[pd.DataFrame, str]:
        marker = self._sql.marker(key)
        entry = self._memory.get(key)
        now = time.monotonic()
        if entry is None or now - entry.full_at > FULL_RELOAD_S:
            frames = self._sql.read(key)
            table = build_table(frames["runs"], frames["params"], frames["metrics"], frames["tags"])
            state = set(
                zip(frames["runs"]["run_id"], frames["runs"]["status"], frames["runs"]["end_ms"],
                    strict=True)
            )  # fmt: skip
            self._memory[key] = _SqlEntry(marker, now, now, state, table)
            return table.copy(deep=False), "sql"
        if entry.marker == marker and now - entry.checked_at < self._settings.cache_ttl_s:
            return entry.table.copy(deep=False), "memory"
        # Something changed (or the TTL passed): read (id, status, end time) of the runs alone,
        # then everything else only for runs that are new, changed, or not finished.
        state = self._sql.run_states(key)
        changed = {r for r, _, _ in state - entry.state}
        changed.update(r for r, status, _ in state if status not in FINISHED)
        gone = {r for r, _, _ in entry.state} - {r for r, _, _ in state}
        if len(changed) > INCREMENTAL_LIMIT:
            entry.full_at = -FULL_RELOAD_S  # cheaper to read everything again
            return self._sql_table(key)
        if not changed and not gone:
            self._memory[key] = replace(entry, marker=marker, checked_at=now)
            return entry.table.copy(deep=False), "memory"
        part = self._sql.read(key, run_ids=sorted(changed))
        small = build_table(part["runs"], part["params"], part["metrics"], part["tags"])
        drop = gone | changed
        table = entry.table
        if drop & {r for r, _, _ in entry.state}:
            table = table[~table["run_id"].isin(drop)]
        table = combine(table, small)
        self._memory[key] = _SqlEntry(marker, now, entry.full_at, state, table)
        return table.copy(deep=False), "sql-incremental"

    # ---- API ---------------------------------------------------------------------------------

    def _api_table(self, key: tuple[str, ...]) -> tuple[pd.DataFrame, str]:
        frames = self._frames.get(key) or self._load(key)
        if frames is None:
            frames = _to_frames(self._search(list(key), ""))
            self.last_fetched = len(frames["runs"])
            path = "api"
        else:
            changed, fresh = self._refresh(key, frames)
            cached = self._api_tables.get(key)
            if not changed and cached is not None:
                return cached.copy(deep=False), "memory"
            frames = _merge(frames, fresh) if changed else frames
            path = "api-incremental"
        self._frames[key] = frames
        table = build_table(frames["runs"], frames["params"], frames["metrics"], frames["tags"])
        self._api_tables[key] = table
        self._save(key, frames)
        return table.copy(deep=False), path

    def _search(self, experiment_ids: list[str], filter_string: str) -> list[Any]:
        runs: list[Any] = []
        token = None
        while True:
            page = self._get_client().search_runs(
                experiment_ids=experiment_ids,
                filter_string=filter_string,
                max_results=API_PAGE,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _refresh(
        self, key: tuple[str, ...], frames: dict[str, pd.DataFrame]
    ) -> tuple[bool, dict[str, pd.DataFrame]]:
        cached = frames["runs"]
        starts = pd.to_numeric(cached["start_ms"], errors="coerce")
        since = int(starts.max()) - NEW_RUN_WINDOW_MS if starts.notna().any() else 0
        fetched = {
            r.info.run_id: r for r in self._search(list(key), f"attributes.start_time >= {since}")
        }
        pending = [
            run_id
            for run_id, status in zip(cached["run_id"], cached["status"], strict=True)
            if status not in FINISHED and run_id not in fetched
        ]
        for i in range(0, len(pending), 100):
            ids = ", ".join(f"'{r}'" for r in pending[i : i + 100])
            for run in self._search(list(key), f"attributes.run_id IN ({ids})"):
                fetched[run.info.run_id] = run
        self.last_fetched = len(fetched)
        fresh = _to_frames(list(fetched.values()))
        # Changed = anything we fetched differs from what we hold (new run, new status, new
        # metric value...); an unchanged running run does not force a rebuild.
        ids = set(fetched)
        changed = _snapshot(fresh, ids) != _snapshot(frames, ids)
        return changed, fresh

    # ---- local cache of finished runs -----------------------------------------------------------

    def _cache_dir(self, key: tuple[str, ...]) -> Path:
        digest = hashlib.sha256(
            json.dumps([self._settings.tracking_uri, list(key)]).encode()
        ).hexdigest()[:24]
        return self._settings.cache_dir / "runs_table" / digest

    def _load(self, key: tuple[str, ...]) -> dict[str, pd.DataFrame] | None:
        folder = self._cache_dir(key)
        try:
            frames = {k: pd.read_parquet(folder / f"{k}.parquet") for k in KINDS}
        except (OSError, ValueError):
            return None
        frames["runs"] = runs_frame(frames["runs"].itertuples(index=False, name=None))
        for kind in ("params", "metrics", "tags"):
            frames[kind] = long_frame(frames[kind].itertuples(index=False, name=None))
        return frames

    def _save(self, key: tuple[str, ...], frames: dict[str, pd.DataFrame]) -> None:
        # Only finished runs are worth keeping: unfinished ones are asked for again anyway.
        finished = frames["runs"][frames["runs"]["status"].isin(FINISHED)]
        ids = set(finished["run_id"])
        folder = self._cache_dir(key)
        tmp = folder.with_name(folder.name + ".tmp")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True, exist_ok=True)
            _for_parquet(finished, ("start_ms", "end_ms")).to_parquet(tmp / "runs.parquet")
            for kind in ("params", "metrics", "tags"):
                part = frames[kind][frames[kind]["run_id"].isin(ids)]
                _for_parquet(part, (), metric=kind == "metrics").to_parquet(tmp / f"{kind}.parquet")
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
        except OSError as exc:  # a read-only data dir costs speed, never the answer
            log.warning("runs table: cannot write the cache in %s: %s", folder, exc)


def _for_parquet(
    frame: pd.DataFrame, int_cols: tuple[str, ...], metric: bool = False
) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if col in int_cols:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("Int64")
        elif metric and col == "value":
            out[col] = out[col].astype("float64")
        else:
            out[col] = out[col].map(lambda v: None if v is None else str(v)).astype(object)
    return out.reset_index(drop=True)


def _empty_frames() -> tuple[pd.DataFrame, ...]:
    return (runs_frame([]), long_frame([]), long_frame([]), long_frame([]))


def _to_frames(runs: list[Any]) -> dict[str, pd.DataFrame]:
    infos = [r.info for r in runs]
    return {
        "runs": runs_frame(
            (i.run_id, i.run_name, i.status, i.user_id, i.start_time, i.end_time, i.experiment_id)
            for i in infos
        ),
        "params": long_frame((r.info.run_id, k, v) for r in runs for k, v in r.data.params.items()),
        "metrics": long_frame(
            (r.info.run_id, k, float(v)) for r in runs for k, v in r.data.metrics.items()
        ),
        "tags": long_frame((r.info.run_id, k, v) for r in runs for k, v in r.data.tags.items()),
    }


def _snapshot(frames: dict[str, pd.DataFrame], ids: set[str]) -> set[tuple[str, ...]]:
    rows: set[tuple[str, ...]] = set()
    for kind in KINDS:
        part = frames[kind][frames[kind]["run_id"].isin(ids)]
        rows.update((kind, *map(_norm, row)) for row in part.itertuples(index=False, name=None))
    return rows


def _norm(value: Any) -> str:
    # One spelling per value whether it came from the API, from Parquet or from numpy, and
    # NaN/None/NA equal to themselves.
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "<missing>"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "<missing>" if math.isnan(value) else repr(float(value))
    return str(value)


def _merge(old: dict[str, pd.DataFrame], new: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    replaced = set(new["runs"]["run_id"])
    return {
        kind: pd.concat(
            [old[kind][~old[kind]["run_id"].isin(replaced)], new[kind]], ignore_index=True
        )
        for kind in KINDS
    }
