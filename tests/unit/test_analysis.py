"""The comparison arithmetic behind the review screens, on small hand-made entities."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from app import analysis, signatures
from app.entities import DatasetInfo, ModelVersionInfo, RunSummary

LOWER = ("rmse", "mae", "loss", "log_loss")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(run_id: str, name: str = "r", params=None, metrics=None, tags=None) -> RunSummary:
    return RunSummary(
        run_id=run_id,
        experiment_id="1",
        run_name=name,
        status="FINISHED",
        user_id="ana",
        start_time=T0,
        end_time=T0 + timedelta(seconds=90),
        params=params or {},
        metrics=metrics or {},
        tags=tags or {},
    )


def version(number: str, run_id: str = "", aliases=(), tags=None) -> ModelVersionInfo:
    return ModelVersionInfo(
        name="m",
        version=number,
        run_id=run_id,
        source="models:/x",
        status="READY",
        stage="None",
        description="",
        aliases=tuple(aliases),
        tags=tags or {},
        creation_time=T0,
        last_updated_time=T0,
        author="ana",
    )


@pytest.mark.parametrize(
    ("metric", "lower"),
    [
        ("rmse", True),
        ("RMSE", True),
        ("val_rmse", True),
        ("test/log_loss", True),
        ("eval.mae", True),
        ("accuracy", False),
        ("f1", False),
        ("rmsez", False),
        ("lossy_accuracy", False),
    ],
)
def test_a_metric_is_lower_is_better_by_its_name_or_suffix(metric: str, lower: bool) -> None:
    assert analysis.is_lower_better(metric, LOWER) is lower


@pytest.mark.parametrize(
    ("metric", "base", "value", "verdict"),
    [
        ("rmse", 10.0, 8.0, "better"),
        ("rmse", 8.0, 10.0, "worse"),
        ("accuracy", 0.8, 0.9, "better"),
        ("accuracy", 0.9, 0.8, "worse"),
        ("accuracy", 0.9, 0.9, "same"),
        ("log_loss", 0.5, 0.5, "same"),
        ("accuracy", None, 0.9, "n/a"),
        ("accuracy", 0.9, None, "n/a"),
    ],
)
def test_a_delta_is_judged_by_the_metric_direction(metric, base, value, verdict) -> None:
    baseline = {} if base is None else {metric: base}
    candidate = {} if value is None else {metric: value}
    frame = analysis.metric_deltas(baseline, {"v2": candidate}, LOWER)
    assert list(frame["verdict"]) == [verdict]
    assert frame.loc[0, "direction"] == (
        "lower is better" if metric in LOWER else "higher is better"
    )


def test_deltas_carry_the_difference_and_the_percentage() -> None:
    frame = analysis.metric_deltas(
        {"rmse": 10.0}, {"v2": {"rmse": 8.0}, "v3": {"rmse": 12.5}}, LOWER
    )
    assert list(frame["label"]) == ["v2", "v3"]
    assert list(frame["delta"]) == [-2.0, 2.5]
    assert list(frame["delta_pct"]) == [-20.0, 25.0]


def test_a_zero_baseline_has_no_percentage() -> None:
    frame = analysis.metric_deltas({"loss": 0.0}, {"v2": {"loss": 1.0}}, LOWER)
    assert math.isnan(frame.loc[0, "delta_pct"])
    assert frame.loc[0, "verdict"] == "worse"


@pytest.mark.parametrize(
    ("rows", "kept"),
    [
        ({"a": ["1", "1"]}, []),
        ({"a": ["1", "2"]}, ["a"]),
        ({"a": ["0.1", 0.1]}, []),  # a param as text equals the same number
        ({"a": ["5", 5.0]}, []),
        ({"a": [None, "x"]}, ["a"]),  # missing on one side is a difference
        ({"a": [None, None]}, []),
        ({"a": ["x", "x"], "b": ["x", "y"], "c": [1.0, 1.0]}, ["b"]),
    ],
)
def test_differences_only_keeps_rows_that_differ(rows, kept) -> None:
    frame = pd.DataFrame(rows, index=["r1", "r2"], dtype=object).T
    assert list(analysis.differences_only(frame).index) == kept


def test_differences_only_leaves_a_single_column_alone() -> None:
    frame = pd.DataFrame({"only": ["1", "2"]}, index=["a", "b"])
    assert analysis.differences_only(frame).equals(frame)


def test_runs_side_by_side_lists_params_metrics_and_user_tags_per_run() -> None:
    runs = [
        run("aaaaaaaa1", "a", {"depth": "3"}, {"rmse": 1.0}, {"team": "x", "mlflow.user": "ana"}),
        run("bbbbbbbb2", "b", {"depth": "5", "lr": "0.1"}, {"rmse": 1.0}, {"team": "x"}),
    ]
    frame = analysis.runs_side_by_side(runs)
    assert list(frame.columns) == ["a (aaaaaaaa)", "b (bbbbbbbb)"]
    assert list(frame.index) == [
        ("params", "depth"),
        ("params", "lr"),
        ("metrics", "rmse"),
        ("tags", "team"),
    ]
    assert frame.loc[("params", "lr"), "a (aaaaaaaa)"] is None
    assert list(analysis.differences_only(frame).index) == [("params", "depth"), ("params", "lr")]


def test_runs_wide_turns_numeric_params_into_numbers_and_keeps_text_params() -> None:
    runs = [
        run("a1", params={"depth": "3", "kind": "gini"}, metrics={"acc": 0.8}),
        run("b2", params={"depth": "5", "kind": "entropy"}, metrics={"acc": 0.9}),
    ]
    wide = analysis.runs_wide(runs)
    assert list(wide["params.depth"]) == [3, 5]
    assert list(wide["params.kind"]) == ["gini", "entropy"]
    assert analysis.numeric_columns(wide) == ["params.depth", "metrics.acc"]


def test_runs_frame_puts_attributes_then_params_metrics_and_tags() -> None:
    frame = analysis.runs_frame(
        [run("a1", params={"p": "1"}, metrics={"m": 2.0}, tags={"t": "x", "mlflow.source": "y"})]
    )
    assert list(frame.columns) == [
        "run_name",
        "run_id",
        "status",
        "user",
        "start_time",
        "duration_s",
        "params.p",
        "metrics.m",
        "tags.t",
    ]
    assert frame.loc[0, "duration_s"] == 90.0


def test_runs_frame_of_no_runs_has_the_fixed_columns() -> None:
    assert list(analysis.runs_frame([]).columns)[:2] == ["run_name", "run_id"]


def test_history_gets_labels_and_seconds_since_each_runs_start() -> None:
    history = pd.DataFrame(
        {
            "run_id": ["r1", "r1", "r2"],
            "key": ["loss"] * 3,
            "value": [1.0, 0.5, 0.9],
            "step": [0, 1, 0],
            "timestamp": [T0, T0 + timedelta(seconds=4), T0 + timedelta(hours=1)],
        }
    )
    frame = analysis.history_for_plot(history, {"r1": "first", "r2": "second"})
    assert list(frame["label"]) == ["first", "first", "second"]
    assert list(frame["wall_time_s"]) == [0.0, 4.0, 0.0]


def test_an_empty_history_stays_empty_with_the_plot_columns() -> None:
    frame = analysis.history_for_plot(pd.DataFrame(), {})
    assert frame.empty
    assert "wall_time_s" in frame.columns


def _sig(*cols: tuple[str, str]) -> dict[str, str]:
    return {"inputs": json.dumps([{"name": n, "type": t} for n, t in cols])}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (_sig(("x", "double")), _sig(("x", "double")), {"x": "same"}),
        (_sig(("x", "double")), _sig(("x", "long")), {"x": "changed type"}),
        (
            _sig(("x", "double")),
            _sig(("x", "double"), ("y", "string")),
            {"x": "same", "y": "added"},
        ),
        (
            _sig(("x", "double"), ("y", "string")),
            _sig(("x", "double")),
            {"x": "same", "y": "removed"},
        ),
        (None, _sig(("x", "double")), {"x": "added"}),
    ],
)
def test_schema_diff_compares_columns_against_the_first_version(a, b, expected) -> None:
    frame = signatures.schema_diff({"v1": a, "v2": b})
    inputs = frame[frame["section"] == "inputs"]
    assert dict(zip(inputs["column"], inputs["status"], strict=True)) == expected


def test_schema_diff_reads_tensor_specs_and_plain_lists() -> None:
    tensor = {"inputs": [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]}
    frame = signatures.schema_diff({"v1": tensor, "v2": tensor})
    assert frame.loc[0, "v1"] == "tensor float32 [-1, 4]"
    assert frame.loc[0, "status"] == "same"


def test_version_review_compares_against_the_first_version() -> None:
    versions = [
        version("1", "r1", aliases=("champion",), tags={"team": "a"}),
        version("2", "r2", aliases=("challenger",), tags={"team": "b"}),
    ]
    runs = {
        "r1": run("r1", params={"depth": "3"}, metrics={"rmse": 10.0, "r2": 0.5}),
        "r2": run("r2", params={"depth": "5"}, metrics={"rmse": 9.0, "r2": 0.4}),
    }
    data = {"1": [DatasetInfo("train", "d1", "code", "sklearn", "training")], "2": []}
    review = analysis.version_review(versions, runs, {"1": None, "2": None}, data, LOWER)
    assert review.baseline == "v1 (champion)"
    verdicts = dict(zip(review.deltas["metric"], review.deltas["verdict"], strict=True))
    assert verdicts == {"r2": "worse", "rmse": "better"}
    assert list(review.params.columns) == ["v1 (champion)", "v2 (challenger)"]
    assert review.tags.loc["team"].tolist() == ["a", "b"]
    assert review.datasets["label"].tolist() == ["v1 (champion)"]
    assert review.run_labels == {"r1": "v1 (champion)", "r2": "v2 (challenger)"}


def test_metrics_across_keeps_the_label_order() -> None:
    frame = analysis.metrics_across({"v1": {"rmse": 2.0}, "v3": {"rmse": 1.0}, "v2": {}})
    assert frame["label"].tolist() == ["v1", "v3"]
