"""Drift and feature-importance views: entities and frames in, Streamlit elements out (no I/O).

Column names, categories, method and feature names come from the data and MLflow: charts are
drawn from copies escaped by `app.ui.chart_text`; tables show the values themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app.entities import DriftResult, FeatureImportance
from app.ui import report_frame
from app.ui.chart_text import plotly_frame, plotly_labels
from app.ui.text import md_escape


def verdict(result: DriftResult) -> None:
    """The data-set verdict as metrics, with the sampling label when it applies."""
    a, b, c, d = st.columns(4)
    a.metric("Data set drift", "Detected" if result.dataset_drift else "Not detected")
    b.metric("Drifted columns", f"{result.drifted_columns} of {len(result.columns)}")
    c.metric("Share drifted", f"{result.drift_share:.1%}")
    d.metric("Drift share threshold", f"{result.drift_share_threshold:.0%}")
    label = "SAMPLED: " if result.sampled else ""
    st.caption(
        f"{label}reference {result.reference_rows:,} rows, current {result.current_rows:,} rows; "
        f"Evidently {md_escape(result.evidently_version)} defaults and thresholds."
    )


def results_frame(result: DriftResult) -> pd.DataFrame:
    """One row per column, with the columns of the CLI's JSON document."""
    return pd.DataFrame(result.to_dict()["columns"])


def results_table(result: DriftResult) -> None:
    """Sortable per-column table (click a header to sort)."""
    st.dataframe(
        results_frame(result),
        hide_index=True,
        width="stretch",
        column_config={"score": st.column_config.NumberColumn(format="%.4g")},
    )


def scores_chart(result: DriftResult) -> None:
    """Drift scores per column, one panel per method (p-values and distances differ in scale)."""
    frame = results_frame(result)
    frame["status"] = frame["drifted"].map({True: "drifted", False: "stable"})
    methods = frame["method"].nunique()
    used = ["column", "score", "status", "method", "threshold", "type"]
    fig = px.bar(
        plotly_frame(frame, used),
        x="column",
        y="score",
        color="status",
        facet_row="method" if methods > 1 else None,
        color_discrete_map={"drifted": "#d62728", "stable": "#2ca02c"},
        hover_data=["threshold", "type"],
        labels=plotly_labels(used),
        height=max(320, 240 * methods),
    )
    fig.update_yaxes(matches=None)
    # Facet titles read "method=<escaped method>": keep the method, already escaped.
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    st.plotly_chart(fig, width="stretch")


def distribution(frame: pd.DataFrame, column: str) -> None:
    """Reference and current distributions of one column, overlaid."""
    if frame.empty:
        st.info(f"No values to plot for {md_escape(column)}.")
        return
    used = ["value", "share", "data"]
    fig = px.bar(
        plotly_frame(frame, used),
        x="value",
        y="share",
        color="data",
        barmode="overlay" if (frame["width"] > 0).any() else "group",
        opacity=0.6,
        labels=plotly_labels(used, {"value": column, "share": "share of rows"}),
        color_discrete_map={"reference": "#1f77b4", "current": "#ff7f0e"},
    )
    st.plotly_chart(fig, width="stretch")


def importance_bars(frame: pd.DataFrame) -> None:
    """Importances of several versions side by side (grouped bars)."""
    if frame.empty:
        st.info("No importances to show.")
        return
    drawn = plotly_frame(frame, ["importance", "feature", "version"])
    order = drawn.groupby("feature")["importance"].max().sort_values(ascending=False).index
    # graph_objects, not plotly.express: this chart opens the page, and express costs ten times
    # as long to build the same figure.
    fig = go.Figure(
        [
            go.Bar(x=rows["importance"], y=rows["feature"], name=str(version), orientation="h")
            for version, rows in drawn.groupby("version", sort=False)
        ]
    )
    fig.update_layout(
        barmode="group",
        legend_title_text="version",
        xaxis_title="importance",
        # The most important feature on top: a category axis counts from the bottom.
        yaxis={"title": "feature", "categoryorder": "array", "categoryarray": list(order)[::-1]},
        height=max(320, 28 * len(order) * max(1, frame["version"].nunique())),
    )
    st.plotly_chart(fig, width="stretch")


def importance_table(importance: FeatureImportance) -> None:
    frame = pd.DataFrame(importance.ranked(), columns=["feature", "importance"])
    frame.insert(0, "rank", range(1, len(frame) + 1))
    st.dataframe(frame, hide_index=True, width="stretch")


def report_panel(state: Callable[[], Any], file_name: str) -> None:
    """Evidently's full report: progress while it builds in the background, then the report.

    `state()` returns the job state (status "running", "done" with a path, or "failed"). Only the
    waiting is polled: once the job ends the whole page reruns and shows the report outside the
    fragment, so the multi-megabyte HTML is sent once, not every two seconds.
    """
    current = state()
    if current is not None and current.status == "failed":
        st.error(f"Evidently could not build the report: {md_escape(current.error)}")
        return
    if current is not None and current.status != "running":
        report_frame.report_frame(current.path, title="Evidently report", file_name=file_name)
        return

    @st.fragment(run_every=2)
    def wait() -> None:
        now = state()
        if now is None or now.status == "running":
            with st.status("Building Evidently's full report (drift + data summary)..."):
                st.write("The verdict, table and charts are ready to use meanwhile.")
        else:
            st.rerun()

    wait()


def importance_vs_drift(frame: pd.DataFrame) -> None:
    """Importance rank against drift: the upper rows of drifted features are the worry."""
    if frame.empty:
        st.info("None of the compared columns has an importance.")
        return
    shown = frame.assign(status=frame["drifted"].map({True: "drifted", False: "stable"}))
    used = ["importance", "feature", "status", "rank", "method", "drift score"]
    drawn = plotly_frame(shown, used)
    fig = px.bar(
        drawn,
        x="importance",
        y="feature",
        color="status",
        orientation="h",
        color_discrete_map={"drifted": "#d62728", "stable": "#2ca02c"},
        category_orders={"feature": list(drawn["feature"])},
        hover_data=["rank", "method", "drift score"],
        labels=plotly_labels(used),
        height=max(320, 26 * len(shown)),
    )
    st.plotly_chart(fig, width="stretch")
