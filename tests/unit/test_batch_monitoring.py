"""Batch sources, the reference profile, quality inputs and the timeline's frames (no stores)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.batch_monitoring import scoring, sources, timeline
from app.entities import DriftConfig
from app.errors import InvalidInput
from app.reports.quality import MAX_CLASSES, quality
from app.reports.verdict import ReferenceProfile, compute_drift
from governance.monitoring_rules import MonitoringBatch, thresholds_for

T0 = datetime(2026, 11, 1, tzinfo=UTC)


# --- sources --------------------------------------------------------------------------------------


def test_a_run_uri_names_an_artifact_inside_the_run() -> None:
    source = sources.parse("runs:/0a1b2c/data/batch-2026-11-03.parquet")
    assert (source.kind, source.run_id, source.path) == (
        "run",
        "0a1b2c",
        "data/batch-2026-11-03.parquet",
    )
    assert sources.as_of_from_name(source.name) == datetime(2026, 11, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("runs:/0a1b2c/../../../etc/passwd.csv", "must stay inside the run's artifacts"),
        ("runs:/0a1b2c/data/../../x.parquet", "must stay inside the run's artifacts"),
        ("runs:/0a1b2c//etc/x.csv", "must stay inside the run's artifacts"),
        ("runs:/0a1b2c/data\\..\\x.csv", "must stay inside the run's artifacts"),
        ("runs:/0a1b2c/model/model.pkl", "only CSV and Parquet"),
        ("runs:/../data/x.csv", "expected runs:/RUN_ID/path"),
        ("runs:/0a1b2c", "expected runs:/RUN_ID/path"),
        ("s3://bucket/batch.parquet", "s3:// sources are not supported"),
        ("http://169.254.169.254/latest/meta-data", "http:// sources are not supported"),
        ("file://evil.example.org/share/x.csv", "only local file:// URIs"),
        ("", "needs a file, a folder or a runs:/ URI"),
    ],
)
def test_a_source_outside_what_is_supported_is_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        sources.parse(text)


def test_a_folder_gives_its_data_files_in_name_order_and_nothing_else(tmp_path: Path) -> None:
    for name in ("b-2026-11-02.csv", "a-2026-11-01.parquet", "notes.txt", ".hidden"):
        (tmp_path / name).write_text("x\n1\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.csv").write_text("x\n1\n", encoding="utf-8")
    found = sources.expand([str(tmp_path)])
    assert [Path(s.path).name for s in found] == ["a-2026-11-01.parquet", "b-2026-11-02.csv"]
    with pytest.raises(InvalidInput, match="no such file or folder"):
        sources.expand([str(tmp_path / "missing.csv")])
    with pytest.raises(InvalidInput, match="only CSV"):
        sources.expand([str(tmp_path / "notes.txt")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInput, match="holds no CSV or Parquet file"):
        sources.expand([str(empty)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-03", datetime(2026, 11, 3, tzinfo=UTC)),
        ("2026-11-03T10:30:00Z", datetime(2026, 11, 3, 10, 30, tzinfo=UTC)),
        ("2026-11-03T10:30:00+02:00", datetime(2026, 11, 3, 8, 30, tzinfo=UTC)),
    ],
)
def test_as_of_is_iso_8601_in_utc(text: str, expected: datetime) -> None:
    assert sources.parse_as_of(text, lambda: T0) == expected


def test_a_bad_as_of_is_one_clear_message() -> None:
    with pytest.raises(InvalidInput, match="not an ISO 8601 date or time"):
        sources.parse_as_of("yesterday", lambda: T0)
    assert sources.parse_as_of(None, lambda: T0) == T0
    assert sources.as_of_from_name("batch-2026-13-45.csv") is None
    assert sources.as_of_from_name("20261105.parquet") == datetime(2026, 11, 5, tzinfo=UTC)


# --- the reference profile gives the same verdict -------------------------------------------------


def _frame(n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gaps = rng.normal(shift, 1, n)
    gaps[rng.random(n) < 0.1] = np.nan
    gaps[:2] = [np.inf, -np.inf]
    return pd.DataFrame(
        {
            "normal": rng.normal(shift, 1, n),
            "gaps": gaps,
            "wide_int": rng.integers(0, 500, n),
            "few_int": rng.integers(0, 4, n),
            "few_float": rng.integers(0, 5, n) / 2.0,
            "city": rng.choice(["Oslo", "Lima", "Pune"], n, p=[0.5, 0.3, 0.2]).astype(object),
            "flag": rng.random(n) < 0.4 + shift / 3,
        }
    )


@pytest.mark.parametrize(("n_ref", "n_cur"), [(600, 450), (1600, 1200)])
def test_a_reference_profile_gives_exactly_the_plain_verdict_batch_after_batch(
    n_ref: int, n_cur: int
) -> None:
    reference = _frame(n_ref, 1, 0.0)
    profile = ReferenceProfile(reference)
    for seed, shift in ((2, 0.3), (3, 0.0), (4, 0.6)):
        current = _frame(n_cur, seed, shift)
        assert (
            compute_drift(profile, current).to_dict() == compute_drift(reference, current).to_dict()
        )
    assert set(profile._numerical) >= {"normal", "gaps", "wide_int"}  # prepared once, kept


def test_a_sampled_verdict_does_not_use_the_whole_references_profile() -> None:
    reference, current = _frame(1600, 1, 0.0), _frame(1200, 2, 0.3)
    config = DriftConfig(sample_rows=500)
    assert compute_drift(ReferenceProfile(reference), current, config) == compute_drift(
        reference, current, config
    )


# --- quality inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "label", "prediction", "message"),
    [
        (pd.DataFrame({"y": [0, 1], "p": [0.2, 1.7]}), "y", "p", "outside \\[0, 1\\]"),
        (pd.DataFrame({"y": [0, 1]}), "y", "p", "no column 'p'"),
        (pd.DataFrame({"y": [0, 1]}), "y", "y", "two different columns"),
        (pd.DataFrame({"y": [np.nan, 1.0], "p": [1.0, np.nan]}), "y", "p", "no row has both"),
        (
            pd.DataFrame({"y": [f"c{i}" for i in range(MAX_CLASSES + 1)], "p": ["c0"] * 101}),
            "y",
            "p",
            "up to 100 classes",
        ),
    ],
)
def test_unusable_labels_and_predictions_get_one_clear_message(
    frame: pd.DataFrame, label: str, prediction: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        quality(frame, label, prediction)


def test_a_regression_of_text_is_refused() -> None:
    frame = pd.DataFrame({"y": ["a", "b"], "p": [1.0, 2.0]})
    with pytest.raises(InvalidInput, match="a regression needs numbers"):
        quality(frame, "y", "p", task="regression")


def test_a_scored_batch_keeps_no_nan_in_its_json() -> None:
    reference = _frame(600, 1, 0.0)
    current = _frame(300, 2, 0.3).assign(y=1, p=1)
    scored = scoring.score(ReferenceProfile(reference), current, label="y", prediction="p")
    record = scoring.to_record("m", "1", scored, as_of=T0, source="x.csv")
    json.loads(record.columns)
    assert "NaN" not in record.columns
    assert "NaN" not in record.quality
    assert record.batch_id == scoring.batch_id("m", "1", scored.content_sha256)
    assert record.quality_dict()["accuracy"] == 1.0
    with pytest.raises(InvalidInput, match="name both the label and the prediction"):
        scoring.score(ReferenceProfile(reference), current, label="y")


# --- the timeline's frames -----------------------------------------------------------------------


def batch(day: int, drifted: dict[str, float], accuracy: float | None = None) -> MonitoringBatch:
    columns = [
        {"column": c, "type": "num", "method": "Wasserstein distance (normed)", "score": s,
         "threshold": 0.1, "drifted": s >= 0.1}
        for c, s in drifted.items()
    ]  # fmt: skip
    share = sum(c["drifted"] for c in columns) / len(columns)
    return MonitoringBatch(
        batch_id=f"b{day}", model="m", version="1", content_sha256="0" * 64,
        as_of=T0 + timedelta(days=day), recorded_at=T0, recorded_by="system:cli", source="x",
        rows=10, reference_rows=10, dataset_drift=share >= 0.5, share_drifted=share,
        drift_share_threshold=0.5,
        drifted_columns=tuple(c["column"] for c in columns if c["drifted"]),
        columns=scoring.canonical(columns),
        quality=scoring.canonical({"accuracy": accuracy}) if accuracy is not None else "",
    )  # fmt: skip


def test_the_heatmap_puts_the_most_often_drifting_columns_first() -> None:
    history = [
        batch(1, {"a": 0.01, "b": 0.20, "c": 0.30}),
        batch(2, {"a": 0.02, "b": 0.05, "c": 0.40}),
        batch(3, {"a": 0.15, "b": 0.05, "c": 0.35}),
    ]
    frame = timeline.heatmap(history)
    # c drifted in 3 batches; a and b in one each, b further past its threshold on average
    assert list(frame.index) == ["c", "b", "a"]
    assert frame.loc["c"].tolist() == pytest.approx([3.0, 3.0, 3.0])
    assert frame.loc["a", frame.columns[0]] == pytest.approx(0.1)
    assert list(timeline.heatmap(history, top=1).index) == ["c"]


def test_intensity_puts_every_method_on_one_scale_with_one_at_the_threshold() -> None:
    assert timeline.intensity("K-S p_value", 0.05, 0.05) == pytest.approx(1.0)
    assert (
        timeline.intensity("K-S p_value", 0.5, 0.05)
        < 1
        < timeline.intensity("K-S p_value", 0.001, 0.05)
    )
    assert timeline.intensity("chi-square p_value", 0.0, 0.05) == timeline.MAX_INTENSITY
    assert timeline.intensity("Jensen-Shannon distance", 0.05, 0.1) == pytest.approx(0.5)
    assert np.isnan(timeline.intensity("PSI", None, 0.1))


def test_the_timeline_has_the_drift_share_and_each_quality_metric_per_batch() -> None:
    history = {"1": [batch(1, {"a": 0.2}, accuracy=0.9), batch(2, {"a": 0.0})]}
    frame = timeline.timeline(history)
    assert timeline.metrics_in(frame) == ["drift_share", "accuracy"]
    assert frame[frame["metric"] == "accuracy"]["batch_id"].tolist() == ["b1"]
    block = {"max_drift_share": 0.3, "metrics": {"accuracy": {"min": 0.8}}}
    thresholds = thresholds_for({"models": {"*": {"monitoring": block}}}, "m")
    assert timeline.threshold_lines(thresholds, "drift_share") == [("max", 0.3)]
    assert timeline.threshold_lines(thresholds, "accuracy") == [("min", 0.8)]
    assert timeline.threshold_lines(None, "accuracy") == []


def test_column_names_from_the_data_are_text_in_the_heatmap_not_plotly_markup() -> None:
    from app.ui.monitoring_views import heatmap_figure

    hostile = '<a href="https://evil.example/">click</a>'
    frame = timeline.heatmap([batch(1, {hostile: 0.3, "plain": 0.0})])
    labels = list(heatmap_figure(frame, ["b1"]).data[0].y)
    assert "<a" not in "".join(labels)
    # Plotly turns &lt; and &gt; back into characters (not &quot;, which would show as is).
    assert '&lt;a href="https://evil.example/"&gt;click&lt;/a&gt;' in labels
