"""Evidently's per-column drift tests, recomputed with numpy and scipy.

Each function mirrors `evidently.legacy.calculations.stattests` (0.7.23) step for step so the
score agrees to rounding: the same cleaning, the same default choice, the same binning and the
same key order (Evidently builds keys from a Python set; we build the same set the same way).
Tests we do not reimplement are delegated to Evidently itself, one column at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.errors import InvalidInput
from app.reports.columns import CAT, NUM, TEXT


@dataclass(frozen=True)
class Method:
    name: str  # Evidently's registry name, e.g. "wasserstein"
    display_name: str  # the name Evidently shows in its report
    types: tuple[str, ...]  # the column types it may be chosen for explicitly
    default_threshold: float
    higher_is_drift: bool  # distances drift when >= threshold; p-values when below it
    inclusive: bool = True  # p-value tests: KS drifts at p <= t, chi-square and Z at p < t


KS = Method("ks", "K-S p_value", (NUM,), 0.05, False, True)
CHI = Method("chisquare", "chi-square p_value", (CAT,), 0.05, False, False)
Z = Method("z", "Z-test p_value", (CAT,), 0.05, False, False)
JS = Method("jensenshannon", "Jensen-Shannon distance", (CAT, NUM), 0.1, True)
WASSERSTEIN = Method("wasserstein", "Wasserstein distance (normed)", (NUM,), 0.1, True)
FAST_METHODS = {m.name: m for m in (KS, CHI, Z, JS, WASSERSTEIN)}
# Evidently's other registered tests; computed by Evidently itself when a column asks for them.
DELEGATED_METHODS = (
    "anderson",
    "cramer_von_mises",
    "ed",
    "es",
    "fisher_exact",
    "g_test",
    "hellinger",
    "kl_div",
    "mannw",
    "empirical_mmd",
    "psi",
    "t_test",
    "TVD",
    "perc_text_content_drift",
    "abs_text_content_drift",
)
METHOD_NAMES = (*FAST_METHODS, *DELEGATED_METHODS)


@dataclass(frozen=True)
class TestOutcome:
    method: str
    score: float
    threshold: float
    drifted: bool


def drifted(method: Method, score: float, threshold: float) -> bool:
    if method.higher_is_drift:
        return bool(score >= threshold)
    return bool(score <= threshold) if method.inclusive else bool(score < threshold)


def clean(series: pd.Series) -> pd.Series:
    """Evidently's cleaning: infinities become missing, missing values are dropped."""
    return series.replace([-np.inf, np.inf], np.nan).dropna()


def default_method(n_reference: int, n_values: int, kind: str) -> Method:
    """Evidently's `_get_default_stattest` for numerical and categorical columns."""
    if n_reference <= 1000:
        if kind == NUM and n_values > 5:
            return KS
        return CHI if n_values > 2 else Z
    if kind == NUM:
        return JS if n_values <= 5 else WASSERSTEIN
    return JS


# --- value-count tests: mirror Evidently's pandas code (cheap: few distinct values) ---------


def _keys(reference: pd.Series, current: pd.Series) -> list[object]:
    return list(set(reference.dropna().unique()) | set(current.dropna().unique()))


def _counts(
    reference: pd.Series, current: pd.Series, keys: list[object]
) -> tuple[list[int], list[int]]:
    ref = {**dict.fromkeys(keys, 0), **dict(reference.value_counts())}
    cur = {**dict.fromkeys(keys, 0), **dict(current.value_counts())}
    return [ref[k] for k in keys], [cur[k] for k in keys]


def chi_square(reference: pd.Series, current: pd.Series) -> float:
    keys = _keys(reference, current)
    ref, cur = _counts(reference, current, keys)
    k_norm = current.shape[0] / reference.shape[0]
    f_exp = [r * k_norm for r in ref]
    from scipy import stats  # here, not at import: the sign-in page loads this module's package

    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(cur, f_exp)[1])


def z_test(reference: pd.Series, current: pd.Series) -> float:
    if (
        reference.nunique() == 1
        and current.nunique() == 1
        and reference.unique()[0] == current.unique()[0]
    ):
        return 1.0
    key = sorted(_keys(reference, current))[0]
    n1, n2 = len(reference), len(current)
    p1 = float((reference != key).sum()) / n1
    p2 = float((current != key).sum()) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    from scipy import stats

    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def jensen_shannon(
    reference: pd.Series,
    current: pd.Series,
    kind: str,
    arrays: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Evidently's `get_binned_data(..., n=30, feel_zeroes=False)` then scipy's distance.

    `arrays` are the cleaned numerical values (sorted) when the caller already has them.
    """
    if kind == NUM and reference.nunique() > 20:
        ref, cur = arrays or (reference.to_numpy(np.float64), current.to_numpy(np.float64))
        bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        ref_pct = np.histogram(ref, bins)[0] / len(ref)
        cur_pct = np.histogram(cur, bins)[0] / len(cur)
    else:
        keys = _keys(reference, current)
        ref_n, cur_n = _counts(reference, current, keys)
        ref_pct = np.array([v / len(reference) for v in ref_n])
        cur_pct = np.array([v / len(current) for v in cur_n])
    from scipy.spatial import distance

    return float(distance.jensenshannon(ref_pct, cur_pct, None))


# --- sorted-array tests for numerical columns ----------------------------------------------


@dataclass(frozen=True)
class Merged:
    """Both cleaned samples sorted together; `from_ref` marks where each value came from."""

    ref_sorted: np.ndarray
    cur_sorted: np.ndarray
    values: np.ndarray
    from_ref: np.ndarray

    @classmethod
    def of(cls, ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> Merged:
        both = np.concatenate([ref_sorted, cur_sorted])
        order = np.argsort(both, kind="stable")  # two sorted runs: timsort merges in linear time
        return cls(ref_sorted, cur_sorted, both[order], order < ref_sorted.size)

    def n_distinct(self) -> int:
        """`pd.concat([ref, cur]).nunique()` on the cleaned values."""
        return int(np.count_nonzero(np.diff(self.values))) + 1 if self.values.size else 0


def wasserstein_normed(merged: Merged) -> float:
    """scipy's `_cdf_distance(1, u, v)` divided by max(std(ref), 0.001), as Evidently does.

    scipy finds each CDF with `searchsorted(..., "right")`; a running count over the merged
    values agrees wherever the gap to the next value is non-zero, and a zero gap adds nothing.
    """
    n_ref, n_cur = merged.ref_sorted.size, merged.cur_sorted.size
    # Counts of 0/1 flags are exact in float64; in-place steps keep temporaries to three.
    u_cdf = np.cumsum(merged.from_ref[:-1], dtype=np.float64)
    v_cdf = np.arange(1, merged.values.size, dtype=np.float64)
    v_cdf -= u_cdf
    u_cdf /= n_ref
    v_cdf /= n_cur
    u_cdf -= v_cdf
    np.abs(u_cdf, out=u_cdf)
    distance_ = float(np.dot(u_cdf, np.diff(merged.values)))
    return distance_ / max(float(np.std(merged.ref_sorted)), 0.001)


def delegate(
    name: str, reference: pd.Series, current: pd.Series, kind: str, threshold: float | None
) -> TestOutcome:
    """Run one of Evidently's own tests on one cleaned column (imports Evidently: slow once)."""
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    column_type = {NUM: ColumnType.Numerical, CAT: ColumnType.Categorical, TEXT: ColumnType.Text}
    try:
        test = get_stattest(reference, current, column_type[kind], name or None)
        result = test(reference, current, column_type[kind], threshold)
    except ValueError as exc:
        raise InvalidInput(f"drift method {name!r} on a {kind} column: {exc}") from exc
    return TestOutcome(
        test.display_name,
        float(result.drift_score),
        float(result.actual_threshold),
        bool(result.drifted),
    )
