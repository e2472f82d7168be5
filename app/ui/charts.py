"""Plotly charts for the comparison screens; frames in, nothing read from anywhere.

Run names, param and metric names and values come from MLflow: each figure is drawn from a copy
escaped by `app.ui.chart_text` (Plotly reads markup and templates in its texts).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app.ui.chart_text import plotly_frame, plotly_labels


def parallel_coordinates(frame: pd.DataFrame, dims: Sequence[str], colour: str | None) -> None:
    """One line per run across numeric params and metrics."""
    if len(frame) < 2 or len(dims) < 2:
        st.info("Parallel coordinates need at least two runs and two numeric columns.")
        return
    colour = colour if colour in frame.columns else None
    used = [*dims, *([colour] if colour else [])]
    fig = px.parallel_coordinates(
        plotly_frame(frame, used),
        dimensions=list(dims),
        color=colour,
        labels=plotly_labels(used, {d: d.split(".", 1)[-1] for d in used}),
        color_continuous_scale=px.colors.sequential.Viridis,
    )
    fig.update_layout(margin={"l": 60, "r": 40, "t": 60, "b": 30})
    st.plotly_chart(fig, width="stretch")


def scatter(frame: pd.DataFrame, x: str, y: str, *, colour: str | None = "run") -> None:
    """Any param or metric against another, one point per run or version."""
    colour = colour if colour in frame.columns else None
    hover = [c for c in ("run_name", "run_id") if c in frame.columns]
    used = [x, y, *([colour] if colour else []), *hover]
    fig = px.scatter(
        plotly_frame(frame, used),
        x=x,
        y=y,
        color=colour,
        hover_data=hover or None,
        labels=plotly_labels(used),
    )
    fig.update_traces(marker={"size": 12})
    st.plotly_chart(fig, width="stretch")


def history(frame: pd.DataFrame, *, by: str) -> None:
    """Metric histories overlaid per run: `by` is "step" or "wall time"."""
    if frame.empty:
        st.info("No metric history was logged for this selection.")
        return
    x = "step" if by == "step" else "wall_time_s"
    keys = frame["key"].nunique()
    used = [x, "value", "label", "key"]
    fig = px.line(
        plotly_frame(frame, used),
        x=x,
        y="value",
        color="label",
        facet_row="key" if keys > 1 else None,
        markers=True,
        labels=plotly_labels(used, {"wall_time_s": "seconds since run start", "label": "run"}),
        height=max(320, 260 * keys),
    )
    fig.update_yaxes(matches=None)
    # Facet titles read "key=<escaped key>": keep the key, already escaped.
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    st.plotly_chart(fig, width="stretch")


def across_versions(frame: pd.DataFrame, metrics: Sequence[str]) -> None:
    """Each chosen metric across versions in version order."""
    shown = frame[frame["metric"].isin(list(metrics))]
    if shown.empty:
        st.info("No metric values for these versions.")
        return
    drawn = plotly_frame(shown, ["label", "value", "metric"])
    # Built with graph_objects: plotly.express takes 70-90 ms (0.5 s cold) for this figure, on
    # the default tab of every Compare versions visit; these traces take under 10 ms.
    fig = go.Figure(
        [
            go.Scatter(x=rows["label"], y=rows["value"], name=str(metric), mode="lines+markers")
            for metric, rows in drawn.groupby("metric", sort=False)
        ]
    )
    fig.update_layout(legend_title_text="metric", xaxis_title="version", yaxis_title="value")
    fig.update_xaxes(
        type="category", categoryorder="array", categoryarray=list(dict.fromkeys(drawn["label"]))
    )
    st.plotly_chart(fig, width="stretch")
