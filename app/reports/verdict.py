"""The drift verdict of Evidently's DataDriftPreset, computed in a second instead of a minute.

Same columns, same types, same default method per column, same thresholds and drift rule
(`share of drifted columns >= drift_share`); numerical columns are sorted once and every test
works on the sorted arrays. Evidently itself is imported only for text columns and for methods
we do not reimplement.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from importlib import metadata

import numpy as np
import pandas as pd

from app.entities import ColumnDrift, DriftConfig, DriftResult
from app.errors import InvalidInput
from app.reports import stattests as st
from app.reports.columns import CAT, NUM, drift_columns


@functools.cache
def evidently_version() -> str:
    """The installed Evidently version, without importing Evidently (which takes seconds).

    Read once per process: the package metadata lookup walks sys.path (about 0.1 s here), and
    every drift verdict's cache key names the version.
    """
    return metadata.version("evidently")


def config_hash(config: DriftConfig) -> str:
    text = json.dumps(asdict(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sample(frame: pd.DataFrame, rows: int | None) -> tuple[pd.DataFrame, bool]:
    """A reproducible random sample (seed 0) when the frame has more than `rows` rows."""
    if rows is None or len(frame) <= rows:
        return frame, False
    return frame.sample(n=rows, random_state=0), True


def _finite(series: pd.Series, where: str, column: str) -> tuple[pd.Series, np.ndarray]:
    if not pd.api.types.is_numeric_dtype(series):
        raise InvalidInput(
            f"column '{column}' in the {where} data should contain numbers only "
            f"(found {series.dtype}); mark it categorical or fix the data"
        )
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    mask = np.isfinite(values)
    if not mask.all():
        series, values = series[mask], values[mask]
    if values.size == 0:
        raise _empty(column, where)
    return series, np.sort(values)


def _empty(column: str, where: str) -> InvalidInput:
    return InvalidInput(
        f"column '{column}' has no values in the {where} data; "
        "mark it as ignored in the column roles"
    )


def _resolve(name: str | None, kind: str, default: st.Method) -> st.Method | str:
    if name is None:
        return default
    method = st.FAST_METHODS.get(name)
    if method is None:
        if name not in st.DELEGATED_METHODS:
            raise InvalidInput(
                f"unknown drift method {name!r}; use one of {', '.join(st.METHOD_NAMES)}"
            )
        return name
    if kind not in method.types:
        raise InvalidInput(f"drift method {name!r} does not apply to a {kind} column")
    return method


class ReferenceProfile:
    """A reference data set with its per-column preparation kept: cleaned values and, for
    numerical columns, the sorted finite array every test starts from.

    Built once per model version and passed to `compute_drift` for each new batch: the
    reference is never cleaned or sorted again (the verdict is the same as without it).
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._numerical: dict[str, tuple[pd.Series, np.ndarray]] = {}
        self._categorical: dict[str, pd.Series] = {}

    def numerical(self, column: str) -> tuple[pd.Series, np.ndarray]:
        """The finite values of a column and the same values sorted (computed on first use)."""
        found = self._numerical.get(column)
        if found is None:
            found = self._numerical[column] = _finite(self.frame[column], "reference", column)
        return found

    def categorical(self, column: str) -> pd.Series:
        """The column without missing and infinite values (computed on first use)."""
        found = self._categorical.get(column)
        if found is None:
            found = self._categorical[column] = st.clean(self.frame[column])
        return found

    def prepare(self, columns: list[tuple[str, str]]) -> None:
        """Compute every column's preparation now (e.g. once per version, before any batch)."""
        for name, kind in columns:
            if name not in self.frame.columns:
                continue
            if kind == NUM and pd.api.types.is_numeric_dtype(self.frame[name]):
                self.numerical(name)
            elif kind == CAT:
                self.categorical(name)


def _numerical(
    ref: pd.Series,
    cur: pd.Series,
    column: str,
    method_name: str | None,
    threshold: float | None,
    profile: ReferenceProfile | None = None,
) -> st.TestOutcome:
    ref, r = profile.numerical(column) if profile else _finite(ref, "reference", column)
    cur, c = _finite(cur, "current", column)
    merged = st.Merged.of(r, c)
    method = _resolve(method_name, NUM, st.default_method(r.size, merged.n_distinct(), NUM))
    if isinstance(method, str):
        return st.delegate(method, ref, cur, NUM, threshold)
    if method is st.KS:
        from scipy import stats  # on first use: see app.reports.stattests

        score = float(stats.ks_2samp(r, c)[1])
    elif method is st.WASSERSTEIN:
        score = st.wasserstein_normed(merged)
    elif method is st.JS:
        score = st.jensen_shannon(ref, cur, NUM, (r, c))
    elif method is st.CHI:
        score = st.chi_square(ref, cur)
    else:
        score = st.z_test(ref, cur)
    return _outcome(method, score, threshold)


def _categorical(
    ref: pd.Series,
    cur: pd.Series,
    column: str,
    method_name: str | None,
    threshold: float | None,
    profile: ReferenceProfile | None = None,
) -> st.TestOutcome:
    ref = profile.categorical(column) if profile else st.clean(ref)
    cur = st.clean(cur)
    if ref.empty:
        raise _empty(column, "reference")
    if cur.empty:
        raise _empty(column, "current")
    n_values = pd.concat([ref, cur]).nunique()
    method = _resolve(method_name, CAT, st.default_method(ref.shape[0], n_values, CAT))
    if isinstance(method, str):
        return st.delegate(method, ref, cur, CAT, threshold)
    if method is st.JS:
        score = st.jensen_shannon(ref, cur, CAT)
    elif method is st.CHI:
        score = st.chi_square(ref, cur)
    else:
        score = st.z_test(ref, cur)
    return _outcome(method, score, threshold)


def _outcome(method: st.Method, score: float, threshold: float | None) -> st.TestOutcome:
    actual = method.default_threshold if threshold is None else float(threshold)
    return st.TestOutcome(method.display_name, score, actual, st.drifted(method, score, actual))


def column_drift(
    reference: pd.Series,
    current: pd.Series,
    column: str,
    kind: str,
    method: str | None = None,
    threshold: float | None = None,
    profile: ReferenceProfile | None = None,
) -> ColumnDrift:
    """Evidently's ValueDrift for one column: method, score, threshold and drift flag."""
    if kind == NUM:
        out = _numerical(reference, current, column, method, threshold, profile)
    elif kind == CAT:
        out = _categorical(reference, current, column, method, threshold, profile)
    else:
        ref, cur = st.clean(reference), st.clean(current)
        if ref.empty or cur.empty:
            raise _empty(column, "reference" if ref.empty else "current")
        out = st.delegate(method or "", ref, cur, kind, threshold)
    return ColumnDrift(column, kind, out.method, out.score, out.threshold, out.drifted)


def compute_drift(
    reference: pd.DataFrame | ReferenceProfile,
    current: pd.DataFrame,
    config: DriftConfig | None = None,
) -> DriftResult:
    """DataDriftPreset's verdict on two frames.

    Args:
        reference: The baseline data (e.g. the training set logged with the model's run), or
            its ReferenceProfile: the same verdict, without preparing the reference again.
        current: The data to compare with it.
        config: Drift share, column roles, per-column methods and thresholds, sampling.

    Returns:
        The per-column results in Evidently's column order and the data-set verdict.

    Raises:
        InvalidInput: Missing columns, a column without values, a non-numeric numerical
            column, or an unknown or inapplicable method.
    """
    config = config or DriftConfig()
    profile = reference if isinstance(reference, ReferenceProfile) else None
    reference = profile.frame if profile else reference
    reference, ref_sampled = sample(reference, config.sample_rows)
    if ref_sampled:
        profile = None  # the profile describes the whole reference, not a sample of it
    current, cur_sampled = sample(current, config.sample_rows)
    columns = drift_columns(current, config.roles)
    missing = [c for c, _ in columns if c not in reference.columns]
    if missing:
        raise InvalidInput(f"the reference data lacks columns: {', '.join(missing)}")
    if not columns:
        raise InvalidInput("there are no numerical, categorical or text columns to compare")

    def one(item: tuple[str, str]) -> ColumnDrift:
        name, kind = item
        method, threshold = (
            config.per_column_method.get(name),
            config.per_column_threshold.get(name),
        )
        return column_drift(reference[name], current[name], name, kind, method, threshold, profile)

    delegated = any(
        kind not in (NUM, CAT) or (config.per_column_method.get(name) or "") in st.DELEGATED_METHODS
        for name, kind in columns
    )
    if delegated:  # import Evidently once here, not concurrently from the worker threads
        import evidently.legacy.calculations.stattests  # noqa: F401

    # numpy releases the GIL in sorts and ufuncs: columns run side by side on the cores we have.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = tuple(pool.map(one, columns))
    n_drifted = sum(1 for r in results if r.drifted)
    share = n_drifted / len(results)
    return DriftResult(
        dataset_drift=bool(share >= config.drift_share),
        drift_share=share,
        drifted_columns=n_drifted,
        columns=results,
        evidently_version=evidently_version(),
        sampled=ref_sampled or cur_sampled,
        config_hash=config_hash(config),
        drift_share_threshold=config.drift_share,
        reference_rows=len(reference),
        current_rows=len(current),
    )
