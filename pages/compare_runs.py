"""Compare runs: params and metrics side by side, parallel coordinates, a scatter of any pair,
and metric histories by step or wall time. The runs live in the URL: ?runs=ID1,ID2."""

import streamlit as st

import app.deps as deps
from app.ui import charts, errors, guard, query, tables
from app.ui.text import md_join


def pick_runs() -> list[str]:
    wanted = query.get_list("runs")
    found, missing = deps.known_runs(tuple(wanted))
    known = {r.run_id: r for r in [*found, *deps.recent_runs(50)]}
    if missing:
        st.warning(f"Unknown run ids ignored: {md_join(missing)}")
    return query.multiselect(
        "Runs",
        list(known),
        "runs",
        format_func=lambda r: f"{known[r].run_name} ({r[:8]})" if r in known else r,
        help="Pick runs here, or select them on the Experiments page.",
    )


def main() -> None:
    st.title("Compare runs")
    run_ids = tuple(pick_runs())
    if len(run_ids) < 2:
        st.info("Pick two or more runs to compare.")
        return
    side, parallel, scatter, history = st.tabs(
        ["Side by side", "Parallel coordinates", "Scatter", "Metric history"]
    )
    with side:
        differences = st.toggle("Differences only", key="runs_differences")
        tables.side_by_side(
            deps.run_comparison(run_ids, differences),
            empty="These runs have identical params, metrics and tags.",
        )
    wide = deps.runs_wide(run_ids)
    numeric = deps.numeric_columns(wide)
    metric_cols = [c for c in numeric if c.startswith("metrics.")]
    with parallel:
        dims = st.multiselect("Axes", numeric, default=numeric[:8], key="pc_dims")
        colour = st.selectbox("Colour by", metric_cols or [None], key="pc_colour")
        charts.parallel_coordinates(wide, dims, colour)
    with scatter:
        axes = [c for c in wide.columns if c.startswith(("params.", "metrics."))]
        if len(axes) < 2:
            st.info("These runs have fewer than two params and metrics.")
        else:
            left, right = st.columns(2)
            x = left.selectbox("X axis", axes, key="scatter_x")
            y_default = metric_cols[0] if metric_cols and metric_cols[0] != x else axes[1]
            y = right.selectbox("Y axis", axes, index=axes.index(y_default), key="scatter_y")
            charts.scatter(wide, x, y)
    with history:
        keys = [c.removeprefix("metrics.") for c in metric_cols]
        chosen = st.multiselect("Metrics", keys, default=keys[:2], key="history_keys")
        by = st.radio("X axis", ["step", "wall time"], horizontal=True, key="history_by")
        if chosen:
            labels = dict(zip(wide["run_id"], wide["run"], strict=True))
            charts.history(deps.history(labels, tuple(chosen)), by=by)
        else:
            st.info("Pick at least one metric.")


guard.require()
errors.run_page(main)
