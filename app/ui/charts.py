"""Plotly charts for the comparison screens; frames in, nothing read from anywhere."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st


def parallel_coordinates(frame: pd.DataFrame, dims: Sequence[str], colour: str | None) -> None:
    """One line per run across numeric params and metrics."""
    if len(frame) < 2 or len(dims) < 2:
        st.info("Parallel coordinates need at least two runs and two numeric columns.")
        return
    fig = px.parallel_coordinates(
        frame,
        dimensions=list(dims),
        color=colour if colour in frame.columns else None,
        labels={d: d.split(".", 1)[-1] for d in dims},
        color_continuous_scale=px.colors.sequential.Viridis,
    )
    fig.update_layout(margin={"l": 60, "r": 40, "t": 60, "b": 30})
    st.plotly_chart(fig, width="stretch")


def scatter(frame: pd.DataFrame, x: str, y: str, *, colour: str | None = "run") -> None:
    """Any param or metric against another, one point per run or version."""
    fig = px.scatter(
        frame,
        x=x,
        y=y,
        color=colour if colour in frame.columns else None,
        hover_data=[c for c in ("run_name", "run_id") if c in frame.columns] or None,
    )
    fig.update_traces(marker={"size": 12})
    st.plotly_chart(fig, width="stretch")


def history(frame: pd.DataFrame, *, by: str) -> None:
    """Metric histories overlaid per run: `by` is "step" or "wall time"."""
    if frame.empty:
        st.info("No metric history was logged for this selection.")
        return
    x = "step" if by == "step" else "wall_time_s"
    fig = px.line(
        frame,
        x=x,
        y="value",
        color="label",
        facet_row="key" if frame["key"].nunique() > 1 else None,
        markers=True,
        labels={"wall_time_s": "seconds since run start", "label": "run"},
        height=max(320, 260 * frame["key"].nunique()),
    )
    fig.update_yaxes(matches=None)
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    st.plotly_chart(fig, width="stretch")


def across_versions(frame: pd.DataFrame, metrics: Sequence[str]) -> None:
    """Each chosen metric across versions in version order."""
    shown = frame[frame["metric"].isin(list(metrics))]
    if shown.empty:
        st.info("No metric values for these versions.")
        return
    # Built with graph_objects: plotly.express takes 70-90 ms (0.5 s cold) for this figure, on
    # the default tab of every Compare versions visit; these traces take under 10 ms.
    fig = go.Figure(
        [
            go.Scatter(x=rows["label"], y=rows["value"], name=str(metric), mode="lines+markers")
            for metric, rows in shown.groupby("metric", sort=False)
        ]
    )
    fig.update_layout(legend_title_text="metric", xaxis_title="version", yaxis_title="value")
    fig.update_xaxes(
        type="category", categoryorder="array", categoryarray=list(dict.fromkeys(shown["label"]))
    )
    st.plotly_chart(fig, width="stretch")
