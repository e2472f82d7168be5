"""Monitoring over time: the timeline, the per-column heatmap and a batch's drift view.

No I/O: frames and entities in, Streamlit elements out. Charts report a clicked batch back to
the page (Plotly point selection); every batch is also reachable through a real link.
Versions, column names and batch ids reach the figures escaped (`app.ui.chart_text`); a point
carries the stored ids as well, for the click.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app.entities import BatchInfo, DriftResult
from app.errors import UserFacingError
from app.ui import drift_views, navigation
from app.ui.chart_text import plotly_text
from app.ui.guard import escape_markdown

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
LABELS = {"drift_share": "drift share", "roc_auc": "ROC AUC", "r2": "R²", "mape": "MAPE %"}


def _label(metric: str) -> str:
    return LABELS.get(metric, metric.upper() if len(metric) <= 4 else metric)


def timeline_figure(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    lines: Mapping[str, Sequence[tuple[str, float]]],
    baselines: Mapping[str, Mapping[str, float]],
) -> go.Figure:
    """One row per metric (drift share first), one line per version, the policy's thresholds
    as red dashed lines and each version's reference quality as a grey dotted baseline."""
    fig = make_subplots(
        rows=len(metrics),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        subplot_titles=[plotly_text(_label(m)) for m in metrics],
    )
    versions = list(dict.fromkeys(frame["version"]))
    for row, metric in enumerate(metrics, start=1):
        for i, version in enumerate(versions):
            part = frame[(frame["metric"] == metric) & (frame["version"] == version)]
            shown = plotly_text(version)
            # (batch id, version) as stored, for the click; then as shown, for the hover.
            ids = [(b, version, plotly_text(b), shown) for b in part["batch_id"]]
            fig.add_trace(
                go.Scatter(
                    x=part["as_of"],
                    y=part["value"],
                    mode="lines+markers",
                    name=f"v{shown}",
                    legendgroup=version,
                    showlegend=row == 1,
                    line={"color": COLOURS[i % len(COLOURS)]},
                    customdata=ids,
                    hovertemplate="%{x|%Y-%m-%d %H:%M}<br>%{y:.4g}<br>batch %{customdata[2]}"
                    "<extra>v%{customdata[3]}</extra>",
                ),
                row=row,
                col=1,
            )
            base = baselines.get(version, {}).get(metric)
            if base is not None:
                fig.add_hline(
                    y=base, line={"dash": "dot", "color": "#7f7f7f"}, row=row, col=1,
                    annotation_text=f"v{plotly_text(version)} reference {base:.3g}",
                )  # fmt: skip
        for kind, value in lines.get(metric, ()):
            fig.add_hline(
                y=value, line={"dash": "dash", "color": "#d62728"}, row=row, col=1,
                annotation_text=f"{kind} {value:g}",
            )  # fmt: skip
    fig.update_layout(height=max(300, 220 * len(metrics)), margin={"t": 40, "b": 20})
    return fig


def heatmap_figure(frame: pd.DataFrame, ids: Sequence[str]) -> go.Figure:
    """Columns (most often drifted first) by batches; 1 on the scale is the column's threshold."""
    fig = go.Figure(
        go.Heatmap(
            z=frame.to_numpy(),
            x=list(frame.columns),
            y=[plotly_text(name) for name in frame.index],
            zmin=0,
            zmax=3,
            colorscale=[[0, "#f7fbff"], [0.33, "#fdd49e"], [0.34, "#fc8d59"], [1, "#b30000"]],
            colorbar={"title": "drift / threshold"},
            customdata=[[plotly_text(i) for i in ids]] * len(frame.index),
            hovertemplate="%{y}<br>%{x}<br>%{z:.2f} × threshold<extra>%{customdata}</extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=max(300, 18 * len(frame.index) + 120), margin={"t": 20, "b": 20})
    return fig


def clicked_batch(event: Any) -> tuple[str, str] | None:
    """(batch_id, version) of the point a person clicked on the timeline, if any."""
    points = (getattr(event, "selection", None) or {}).get("points") or []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, (list, tuple)) and len(data) >= 2:
            return str(data[0]), str(data[1])
    return None


def batch_header(info: BatchInfo) -> None:
    """Which batch this drift view shows, and the way back to its timeline."""
    st.subheader(
        f"Batch {escape_markdown(info.batch_id)} of {escape_markdown(info.model)} "
        f"v{escape_markdown(info.version)}"
    )
    st.caption(
        f"As of {info.as_of:%Y-%m-%d %H:%M} UTC · {info.rows:,} rows · content SHA-256 "
        f"{info.content_sha256[:16]}… · source: {escape_markdown(info.source)}"
    )
    navigation.link(
        "monitoring.py",
        "Back to the monitoring timeline",
        query={"model": info.model, "version": info.version},
    )


def batch_drift(
    info: BatchInfo,
    result: DriftResult,
    frames: Callable[[], tuple[pd.DataFrame, pd.DataFrame]],
    distribution: Callable[[pd.Series, pd.Series, str], pd.DataFrame],
    start_report: Callable[[pd.DataFrame, pd.DataFrame], str],
    report_state: Callable[[str], Any],
) -> None:
    """The stored verdict of a batch, its charts, and Evidently's report on demand."""
    batch_header(info)
    drift_views.verdict(result)
    tabs = st.tabs(["Columns", "Scores", "Distributions", "Evidently report"])
    with tabs[0]:
        drift_views.results_table(result)
    with tabs[1]:
        drift_views.scores_chart(result)
    try:
        reference, current = frames()
    except UserFacingError as exc:
        reason = escape_markdown(str(exc))
        for tab in tabs[2:]:
            tab.info(f"The stored verdict stands; charts from the data need it: {reason}")
        return
    with tabs[2]:
        kinds = {c.column: c.type for c in result.columns}
        column = st.selectbox("Column", list(kinds), key=f"batch_column_{info.batch_id}")
        if column:
            drift_views.distribution(
                distribution(reference[column], current[column], kinds[column]), column
            )
    with tabs[3]:
        wanted = f"batch_report_{info.batch_id}"
        if not st.session_state.get(wanted) and st.button("Build Evidently's report"):
            st.session_state[wanted] = True
        if st.session_state.get(wanted):
            key = start_report(reference, current)
            drift_views.report_panel(lambda: report_state(key), f"batch-{info.batch_id}.html")
