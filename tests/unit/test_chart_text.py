"""Names and values from MLflow or uploads reach Plotly as text: no link, no style, no template.

Every chart builder is fed names that Plotly would otherwise draw as markup (a link, a span that
restyles the chart) or substitute as a hover template (`%{y}`), through the same frames the pages
give it. The figure each one draws (recorded as it reaches `st.plotly_chart`, which still runs)
must hold no `<` of the data in any text Plotly shows, no `%{` of the data in a template, and
each name once decoded as Plotly decodes entities, i.e. shown as the original text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest
import streamlit as st

from app import analysis
from app.batch_monitoring import scoring, timeline
from app.entities import (
    ColumnDrift,
    DriftResult,
    FeatureImportance,
    RunSummary,
    TargetHistory,
    Tenure,
)
from app.reports.distributions import overlay
from app.reports.importance import drift_by_importance, long_form
from app.ui import charts, drift_views, history, monitoring_views
from app.ui.chart_text import plotly_frame, plotly_labels, plotly_text
from governance.monitoring_rules import MonitoringBatch

LINK = '<a href="http://evil.example/">x</a>'
SPAN = '<span style="font-size:100px">big</span>'
TEMPLATE = "ratio %{y} of %{x}"
PAYLOADS = (LINK, SPAN, TEMPLATE)
T0 = datetime(2026, 11, 1, tzinfo=UTC)

# What Plotly.js does to a text before drawing it (svg_text_utils.convertEntities) and the
# pattern its hover and text templates substitute (lib/index.js TEMPLATE_STRING_REGEX).
_NAMED = {"mu": "μ", "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0", "times": "×"}
_NAMED |= {"plusmn": "±", "deg": "°"}
ENTITY = re.compile(r"&(#\d+|#x[\da-fA-F]+|[a-z]+);")
PLOTLY_TEMPLATE = re.compile(r"%{([^\s%{}:]*)([:|\|][^}]*)?}")
OUR_TAGS = re.compile(r"<br>|<extra>|</extra>")  # the only tags a builder writes itself
NOT_SHOWN = {"customdata", "legendgroup", "offsetgroup", "alignmentgroup", "uid"}
TEMPLATES = {"hovertemplate", "texttemplate"}


def shown(text: str) -> str:
    """`text` as Plotly draws it: entity references turned into characters."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("#"):
            code = int(name[2:], 16) if name[1] == "x" else int(name[1:])
            return chr(code) if code <= 0x10FFFF else match.group(0)
        return _NAMED.get(name, match.group(0))

    return ENTITY.sub(one, text)


# ---- the helper ----------------------------------------------------------------------------------

VALUES = (
    *PAYLOADS,
    "<b>bold</b> <i>i</i> <sub>2</sub> <sup>3</sup> <br> <em>e</em> <s>s</s>",
    "&lt;b&gt; &amp; &#60; &#x3c; &quot; &nbsp;",
    "%{x|%Y} %{customdata[0]} %%{y} 50% {x} %",
    "plain name_with.dots and 'quotes' \"double\"",
    "&#123;x} %&#123;",
    "ümlaut ✓ 数据",
    "",
)


@pytest.mark.parametrize("value", VALUES)
def test_plotly_text_is_shown_as_the_value_and_holds_no_tag_or_template(value: str) -> None:
    escaped = plotly_text(value)
    assert shown(escaped) == value
    assert not {"<", ">"} & set(escaped)
    assert PLOTLY_TEMPLATE.search(escaped) is None
    assert PLOTLY_TEMPLATE.search(f"name={escaped}=%{{x}}").group(0) == "%{x}"  # ours still works


def test_plotly_text_is_one_to_one_so_escaped_categories_still_match() -> None:
    assert len({plotly_text(v) for v in VALUES}) == len(VALUES)
    assert plotly_text("%{") != plotly_text("%&#123;")
    assert plotly_text(3) == "3"


def test_plotly_frame_escapes_text_cells_and_leaves_numbers_dates_and_gaps() -> None:
    frame = pd.DataFrame(
        {"name": [LINK, None], "n": [1.5, 2.0], "mixed": ["<b>", 3], "when": [T0, T0]}
    )
    out = plotly_frame(frame, ["name", "n", "mixed", "when", "absent"])
    assert list(out.columns) == ["name", "n", "mixed", "when"]
    assert out["name"].tolist()[0] == plotly_text(LINK)
    assert out["name"].isna().tolist()[1]
    assert out["n"].tolist() == [1.5, 2.0]
    assert out["mixed"].tolist() == ["&lt;b&gt;", 3]
    assert out["when"].tolist() == [T0, T0]
    assert frame["name"].tolist()[0] == LINK  # the caller's frame is untouched
    labels = plotly_labels(["a", LINK], {"a": SPAN})
    assert labels == {"a": plotly_text(SPAN), LINK: plotly_text(LINK)}


# ---- every chart builder ------------------------------------------------------------------------


def texts(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(property, string) of every string in a figure's JSON that Plotly may draw."""
    if isinstance(node, str):
        yield key, node
    elif isinstance(node, dict):
        for k, v in node.items():
            if k not in NOT_SHOWN:
                yield from texts(v, k)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from texts(v, key)
    elif hasattr(node, "tolist"):
        yield from texts(node.tolist(), key)


def hover_data(trace: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The customdata entries a trace's hover template draws (the rest is never shown)."""
    template = str(trace.get("hovertemplate") or "")
    data = trace.get("customdata")
    if data is None:
        return
    rows = data.tolist() if hasattr(data, "tolist") else list(data)
    for match in PLOTLY_TEMPLATE.finditer(template):
        index = re.fullmatch(r"customdata(?:\[(\d+)\])?", match.group(1))
        if index is None:
            continue
        for row in rows:
            picked = row if index.group(1) is None else row[int(index.group(1))]
            yield from texts(picked, "customdata")


def figure_texts(fig: go.Figure) -> list[tuple[str, str]]:
    data = fig.to_plotly_json()
    found = list(texts(data))
    for trace in data["data"]:
        found += list(hover_data(trace))
    return found


def run(name: str, params: dict[str, str], metrics: dict[str, float]) -> RunSummary:
    return RunSummary(f"{name}-id-0000", "1", name, "FINISHED", SPAN, T0, T0, params, metrics)


def runs() -> pd.DataFrame:
    return analysis.runs_wide(
        [
            run(SPAN, {LINK: "1", "kind": LINK}, {TEMPLATE: 0.1, SPAN: 3.0}),
            run(TEMPLATE, {LINK: "2", "kind": SPAN}, {TEMPLATE: 0.4, SPAN: 1.0}),
            run("plain", {LINK: "3", "kind": TEMPLATE}, {TEMPLATE: 0.2, SPAN: 2.0}),
        ]
    )


def metric_history() -> pd.DataFrame:
    rows = [
        {"run_id": rid, "key": key, "value": float(step), "step": step,
         "timestamp": T0 + timedelta(seconds=step)}
        for rid in ("r1", "r2") for key in (TEMPLATE, SPAN) for step in range(3)
    ]  # fmt: skip
    return analysis.history_for_plot(pd.DataFrame(rows), {"r1": LINK, "r2": "plain"})


def drift_result() -> DriftResult:
    columns = (
        ColumnDrift(LINK, "num", "Wasserstein distance (normed)", 0.3, 0.1, True),
        ColumnDrift(SPAN, "cat", f"chi-square p_value {TEMPLATE}", 0.2, 0.05, False),
        ColumnDrift(TEMPLATE, "num", "Wasserstein distance (normed)", 0.01, 0.1, False),
    )
    return DriftResult(True, 1 / 3, 1, columns, "0.7.23")


def importances(version: str) -> FeatureImportance:
    scores = {LINK: 0.5, SPAN: 0.3, TEMPLATE: 0.2}
    return FeatureImportance("m", version, "artifact", scores, TEMPLATE)


def target_history() -> TargetHistory:
    tenures = (
        Tenure(LINK, "alias", "3", None, "2026-11-02T00:00:00Z", "before_countersign"),
        Tenure(LINK, "alias", "4", "2026-11-02T00:00:00Z", None, SPAN, "r-1", TEMPLATE, (SPAN,)),
        Tenure(TEMPLATE, "stage", None, "2026-11-01T00:00:00Z", None, "request"),
    )
    return TargetHistory("m", "2026-11-01T00:00:00Z", tenures, ())


def batch(day: int, batch_id: str, columns: dict[str, float]) -> MonitoringBatch:
    drift = [
        {"column": c, "type": "num", "method": "Wasserstein distance (normed)", "score": s,
         "threshold": 0.1, "drifted": s >= 0.1}
        for c, s in columns.items()
    ]  # fmt: skip
    return MonitoringBatch(
        batch_id=batch_id, model="m", version="1", content_sha256="0" * 64,
        as_of=T0 + timedelta(days=day), recorded_at=T0, recorded_by="system:cli", source="x",
        rows=10, reference_rows=10, dataset_drift=True, share_drifted=0.5,
        drift_share_threshold=0.5, drifted_columns=(LINK,), columns=scoring.canonical(drift),
        quality=scoring.canonical({"accuracy": 0.9}),
    )  # fmt: skip


BATCHES = [batch(1, LINK, {LINK: 0.3, SPAN: 0.0, TEMPLATE: 0.2}), batch(2, SPAN, {LINK: 0.1})]


def timeline_figure() -> go.Figure:
    frame = timeline.timeline({TEMPLATE: BATCHES})
    lines = {"accuracy": [("min", 0.8)]}
    return monitoring_views.timeline_figure(
        frame, timeline.metrics_in(frame), lines, {TEMPLATE: {"accuracy": 0.95}}
    )


HOSTILE_RUNS = runs()
CASES: dict[str, Callable[[], go.Figure | None]] = {
    "parallel coordinates": lambda: charts.parallel_coordinates(
        HOSTILE_RUNS, [f"params.{LINK}", f"metrics.{SPAN}"], f"metrics.{TEMPLATE}"
    ),
    "scatter coloured by run": lambda: charts.scatter(
        HOSTILE_RUNS, "params.kind", f"metrics.{TEMPLATE}"
    ),
    "scatter coloured by a text param": lambda: charts.scatter(
        HOSTILE_RUNS, f"params.{LINK}", f"metrics.{SPAN}", colour="params.kind"
    ),
    "metric history by step": lambda: charts.history(metric_history(), by="step"),
    "metric history by wall time": lambda: charts.history(metric_history(), by="wall time"),
    "metrics across versions": lambda: charts.across_versions(
        analysis.metrics_across({f"v1 {SPAN}": {TEMPLATE: 0.1, LINK: 0.3}, "v2": {TEMPLATE: 0.2}}),
        [TEMPLATE, LINK],
    ),
    "drift scores": lambda: drift_views.scores_chart(drift_result()),
    "distribution of a category": lambda: drift_views.distribution(
        overlay(pd.Series([LINK, SPAN, "a"]), pd.Series([TEMPLATE, LINK]), "cat"), TEMPLATE
    ),
    "distribution of a number": lambda: drift_views.distribution(
        overlay(pd.Series([1.0, 2.0, 3.0]), pd.Series([2.0, 4.0]), "num"), " ".join(PAYLOADS)
    ),
    "importance bars": lambda: drift_views.importance_bars(
        long_form([importances("1"), importances("2")], 3).assign(
            version=[f"v1 {TEMPLATE}"] * 3 + ["v2"] * 3
        )
    ),
    "importance against drift": lambda: drift_views.importance_vs_drift(
        drift_by_importance(drift_result(), importances("1"), 2)
    ),
    "alias and stage timeline": lambda: history.show(target_history()),
    "monitoring timeline": timeline_figure,
    "monitoring heatmap": lambda: monitoring_views.heatmap_figure(
        timeline.heatmap(BATCHES), [LINK, f"{SPAN} {TEMPLATE}"]
    ),
}


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[go.Figure]:
    """Every figure handed to `st.plotly_chart` (which still runs, in bare mode)."""
    figures: list[go.Figure] = []
    real = st.plotly_chart

    def record(figure: go.Figure, *args: Any, **kwargs: Any) -> Any:
        figures.append(figure)
        return real(figure, *args, **kwargs)

    monkeypatch.setattr(st, "plotly_chart", record)
    return figures


@pytest.mark.parametrize("case", list(CASES))
def test_names_from_the_data_reach_the_chart_as_text_not_markup(case: str, drawn: list) -> None:
    made = CASES[case]()
    figures = [made] if isinstance(made, go.Figure) else drawn
    assert len(figures) == 1
    found = figure_texts(figures[0])
    for prop, text in found:
        body = OUR_TAGS.sub("", text) if prop in TEMPLATES else text
        assert not {"<", ">"} & set(body), f"markup from the data in {prop}: {text!r}"
        assert TEMPLATE not in text, f"a template from the data in {prop}: {text!r}"
    for payload in PAYLOADS:
        assert any(payload in shown(text) for _, text in found), f"{payload!r} is not shown"


def test_category_orders_match_the_escaped_categories(drawn: list[go.Figure]) -> None:
    charts.across_versions(
        analysis.metrics_across({LINK: {"m": 0.1}, SPAN: {"m": 0.2}, "v3": {"m": 0.3}}), ["m"]
    )
    drift_views.importance_vs_drift(drift_by_importance(drift_result(), importances("1"), 2))
    across, importance = drawn
    order = list(across.layout.xaxis.categoryarray)
    assert not any("<" in v for v in order)
    assert [shown(v) for v in order] == [LINK, SPAN, "v3"]
    assert list(across.data[0].x) == order
    ranked = [shown(v) for v in importance.layout.yaxis.categoryarray]
    assert ranked == [TEMPLATE, SPAN, LINK]  # horizontal bars are listed from the bottom up
    drawn_bars = {shown(v) for trace in importance.data for v in trace.y}
    assert drawn_bars == set(ranked)


def test_a_clicked_batch_on_the_timeline_is_the_stored_batch_id_not_its_shown_form() -> None:
    fig = timeline_figure()
    point = {"customdata": list(fig.data[0].customdata[0])}
    event = SimpleNamespace(selection={"points": [point]})
    assert monitoring_views.clicked_batch(event) == (LINK, TEMPLATE)
