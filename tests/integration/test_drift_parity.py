"""Parity: our verdict equals Evidently 0.7.23's DataDriftPreset on the same frames.

Evidently runs once per scenario (session scope) on small frames; each test compares method
name, score (1e-9 relative), drifted flag per column, and the share of drifted columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.entities import ColumnRoles, DriftConfig, DriftResult
from app.reports.verdict import compute_drift

pytestmark = pytest.mark.slow


def _frame(n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    with_gaps = rng.normal(shift, 1.0, n)
    with_gaps[rng.random(n) < 0.1] = np.nan
    with_gaps[:2] = [np.inf, -np.inf]
    cities = rng.choice(
        ["Oslo", "Lima", "Pune", "Kyiv"], n, p=[0.4, 0.3, 0.2 + shift / 3, 0.1 - shift / 3]
    )
    cities = cities.astype(object)
    cities[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {
            "normal": rng.normal(shift, 1.0, n),
            "same": rng.normal(0.0, 1.0, n),
            "with_gaps": with_gaps,
            "skewed": rng.exponential(1.0 + shift, n),
            "wide_int": rng.integers(0, 500, n),
            "few_int": rng.integers(0, 4 + int(shift > 0), n),
            "binary_int": rng.integers(0, 2, n),
            "few_float": rng.integers(0, 5, n).astype(float) / 2,
            "binary_float": (rng.random(n) < 0.3 + shift / 2).astype(float),
            "const_num": np.full(n, 7.5),
            "const_cat": np.array(["same"] * n, dtype=object),
            "city": cities,
            "city_str": pd.Series(rng.choice(["a", "b", "c"], n), dtype="str"),
            "yes_no": rng.random(n) < 0.5 + shift / 4,
            "tier": pd.Categorical(rng.choice(["gold", "silver"], n)),
            "twenty_five": rng.integers(0, 25, n).astype(float),
            "when": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
        }
    )


SCENARIOS = {
    "small_reference": (_frame(600, 1, 0.0), _frame(450, 2, 0.3), DriftConfig()),
    "large_reference": (_frame(1600, 3, 0.0), _frame(1200, 4, 0.3), DriftConfig()),
    "no_drift": (_frame(1100, 5, 0.0), _frame(1000, 6, 0.0), DriftConfig(drift_share=0.3)),
    "overrides": (
        _frame(1200, 7, 0.0),
        _frame(900, 8, 0.2),
        DriftConfig(
            per_column_method={
                "normal": "ks",
                "skewed": "psi",
                "wide_int": "jensenshannon",
                "few_int": "chisquare",
                "city": "hellinger",
                "twenty_five": "jensenshannon",
            },
            per_column_threshold={"normal": 0.01, "same": 0.05, "yes_no": 0.2},
        ),
    ),
}


@pytest.fixture(scope="session")
def evidently_verdicts() -> dict[str, DriftResult]:
    from app.reports.evidently_report import run_preset, verdict_from_snapshot

    out = {}
    for name, (reference, current, config) in SCENARIOS.items():
        snapshot = run_preset(reference, current, config, infer=True)
        out[name] = verdict_from_snapshot(snapshot, config)
    return out


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_verdict_matches_evidently_column_by_column(
    scenario: str, evidently_verdicts: dict[str, DriftResult]
) -> None:
    reference, current, config = SCENARIOS[scenario]
    ours = compute_drift(reference, current, config)
    theirs = evidently_verdicts[scenario]
    assert [c.column for c in ours.columns] == [c.column for c in theirs.columns]
    for mine, ref in zip(ours.columns, theirs.columns, strict=True):
        assert (mine.column, mine.type, mine.method) == (ref.column, ref.type, ref.method)
        assert mine.score == pytest.approx(ref.score, rel=1e-9, abs=1e-300), mine.column
        assert mine.threshold == ref.threshold, mine.column
        assert mine.drifted == ref.drifted, mine.column
    assert ours.drift_share == theirs.drift_share
    assert ours.drifted_columns == theirs.drifted_columns
    assert ours.dataset_drift == theirs.dataset_drift


def test_the_scenarios_cover_every_default_method(
    evidently_verdicts: dict[str, DriftResult],
) -> None:
    methods = {c.method for r in evidently_verdicts.values() for c in r.columns}
    assert {
        "K-S p_value",
        "chi-square p_value",
        "Z-test p_value",
        "Jensen-Shannon distance",
        "Wasserstein distance (normed)",
        "PSI",
        "Hellinger distance",
    } <= methods


def test_the_datetime_column_is_left_out_as_evidently_does(
    evidently_verdicts: dict[str, DriftResult],
) -> None:
    columns = {c.column for c in evidently_verdicts["small_reference"].columns}
    assert "when" not in columns
    assert "city_str" in columns


def test_pinned_roles_give_the_same_verdict_as_evidently_with_that_definition() -> None:
    from app.reports.evidently_report import run_preset, verdict_from_snapshot

    reference, current, _ = SCENARIOS["small_reference"]
    cols = ["normal", "few_int", "wide_int", "city", "when"]
    config = DriftConfig(
        roles=ColumnRoles(categorical=("wide_int",), numerical=("few_int",), datetime=("when",))
    )
    ours = compute_drift(reference[cols], current[cols], config)
    theirs = verdict_from_snapshot(run_preset(reference[cols], current[cols], config), config)
    assert [(c.column, c.type, c.method, c.drifted) for c in ours.columns] == [
        (c.column, c.type, c.method, c.drifted) for c in theirs.columns
    ]
    for mine, ref in zip(ours.columns, theirs.columns, strict=True):
        assert mine.score == pytest.approx(ref.score, rel=1e-9)
