"""Verdict rules that do not need Evidently: roles, overrides, errors, sampling, cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.entities import ColumnRoles, DriftConfig
from app.errors import InvalidInput
from app.reports.cache import DriftCache, cache_key, cached_drift, frame_digest
from app.reports.columns import infer_column_type
from app.reports.verdict import compute_drift

RNG = np.random.default_rng(0)
REF = pd.DataFrame(
    {
        "x": RNG.normal(0, 1, 1500),
        "k": RNG.integers(0, 3, 1500),
        "id": np.arange(1500),
        "s": RNG.choice(["a", "b"], 1500),
    }
)
CUR = REF.assign(x=REF["x"] + 1.0)


@pytest.mark.parametrize(
    ("series", "kind"),
    [
        (pd.Series([1.0, 2.0]), "num"),
        (pd.Series(np.arange(11)), "num"),
        (pd.Series(np.arange(10)), "cat"),
        (pd.Series(["a", "a", "b", "b"]), "cat"),
        (pd.Series(["a", "b", "c", "d"]), "text"),
        (pd.Series([True, False]), "cat"),
        (pd.Series([1, 2], dtype="Int64"), "unknown"),
        (pd.Series([None, None], dtype=object), "unknown"),
        (pd.Series(pd.date_range("2026-01-01", periods=2)), "datetime"),
    ],
)
def test_column_types_are_inferred_as_evidently_infers_them(series: pd.Series, kind: str) -> None:
    assert infer_column_type(series) == kind


def test_a_shifted_column_drifts_and_the_verdict_follows_the_share() -> None:
    result = compute_drift(REF, CUR, DriftConfig(roles=ColumnRoles(id="id")))
    flags = {c.column: c.drifted for c in result.columns}
    assert flags == {"x": True, "k": False, "s": False}
    assert result.drift_share == pytest.approx(1 / 3)
    assert result.dataset_drift is False
    assert compute_drift(REF, CUR, DriftConfig(drift_share=0.25)).dataset_drift is True


def test_roles_force_a_type_and_exclude_columns() -> None:
    config = DriftConfig(roles=ColumnRoles(categorical=("k",), ignored=("s",), id="id"))
    result = compute_drift(REF, CUR, config)
    assert [(c.column, c.type) for c in result.columns] == [("x", "num"), ("k", "cat")]


def test_a_per_column_method_and_threshold_apply() -> None:
    config = DriftConfig(per_column_method={"x": "ks"}, per_column_threshold={"k": 0.5})
    result = {c.column: c for c in compute_drift(REF, CUR, config).columns}
    assert result["x"].method == "K-S p_value"
    assert result["k"].threshold == 0.5


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (DriftConfig(per_column_method={"x": "chisquare"}), "does not apply to a num column"),
        (DriftConfig(per_column_method={"x": "magic"}), "unknown drift method 'magic'"),
        (DriftConfig(roles=ColumnRoles(id="nope")), "unknown columns: nope"),
        (DriftConfig(roles=ColumnRoles(numerical=("s",))), "'s' in the reference data should"),
    ],
)
def test_an_unusable_configuration_is_a_clear_error(config: DriftConfig, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        compute_drift(REF, CUR, config)


def test_a_column_without_values_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="column 'x' has no values in the current data"):
        compute_drift(REF, CUR.assign(x=np.nan))


def test_sampling_is_labelled() -> None:
    result = compute_drift(REF, CUR, DriftConfig(sample_rows=500))
    assert result.sampled is True
    assert (result.reference_rows, result.current_rows) == (500, 500)
    assert compute_drift(REF, CUR).sampled is False


def test_the_content_hash_follows_values_not_identity() -> None:
    assert frame_digest(REF) == frame_digest(REF.copy())
    assert frame_digest(REF) != frame_digest(CUR)
    assert cache_key(REF, CUR, DriftConfig()) != cache_key(REF, CUR, DriftConfig(drift_share=0.4))


def test_the_disk_cache_survives_a_new_cache_object(tmp_path) -> None:
    first = cached_drift(REF, CUR, None, tmp_path)
    key = cache_key(REF, CUR, DriftConfig())
    assert DriftCache(tmp_path).get_result(key) == first
    assert cached_drift(REF, CUR, None, tmp_path) == first


def test_a_damaged_cache_entry_is_recomputed(tmp_path) -> None:
    first = cached_drift(REF, CUR, None, tmp_path)
    key = cache_key(REF, CUR, DriftConfig())
    path = next((tmp_path / "drift").rglob(f"{key}.json"))
    path.write_text("{not json")
    assert cached_drift(REF, CUR, None, tmp_path) == first
