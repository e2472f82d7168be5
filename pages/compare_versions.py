"""Compare model versions: a candidate against the current holder of an alias (challenger versus
champion) or any N versions. Shareable: ?model=X&versions=3,4 or
?model=X&mode=alias&alias=champion&candidate=4."""

import streamlit as st

import app.deps as deps
from app.ui import charts, errors, guard, holders, navigation, pickers, query, tables
from app.ui.text import md_escape

MODES = {"alias": "Candidate versus the holder of an alias or stage", "versions": "Any versions"}


def choose(model: str) -> tuple[str, ...]:
    """The versions to compare, baseline first."""
    items = sorted(deps.versions(model), key=lambda v: int(v.version))
    numbers = [v.version for v in items]
    held = [a for v in items for a in v.aliases] + [v.stage for v in items]
    targets = sorted({t for t in held if t and t not in ("None", "Archived")})
    default_mode = "versions" if query.get("versions") or not targets else "alias"
    mode = query.selectbox(
        "Compare", list(MODES), "mode", format_func=MODES.get, default=default_mode
    )
    if mode == "alias":
        if targets or query.get("alias"):
            return holders.against_holder(model, items, targets)
        st.info("No version of this model holds an alias or a stage; pick versions instead.")
    by_number = {v.version: v for v in items}
    return tuple(
        query.multiselect(
            "Versions (the first one is the baseline)",
            numbers,
            "versions",
            format_func=lambda n: pickers.version_text(by_number[n]),
            default=numbers[-2:],
        )
    )


def main() -> None:
    st.title("Compare versions")
    name = pickers.model(deps.registered_models())
    if name is None:
        st.info("No registered models in this store yet.")
        return
    chosen = choose(name)
    if len(chosen) < 2:
        if query.get("mode") != "alias":
            st.info("Pick two or more versions.")
        return
    review = deps.version_review(name, chosen)
    st.caption(
        f"Baseline: **{md_escape(review.baseline)}**; deltas are each version minus the baseline."
    )
    st.dataframe(review.summary, hide_index=True, width="stretch")
    if navigation.is_available("promotions.py"):
        navigation.link(
            "promotions.py",
            "Request promotion of the candidate",
            query={"model": name, "version": chosen[-1], "target": query.get("alias")},
        )
    # Only the open tab runs: metric histories and charts are read and drawn when looked at.
    tabs = st.tabs(
        ["Metrics", "Params", "Tags", "Schema", "Data sets", "History"],
        key="version_tab",
        on_change="rerun",
    )
    if tabs[0].open:
        with tabs[0]:
            tables.deltas(review.deltas)
            across = deps.metrics_across_versions(name)
            metrics = sorted(across["metric"].unique())
            picked = st.multiselect(
                "Metrics across versions", metrics, default=metrics[:3], key="across"
            )
            charts.across_versions(across, picked)
    if tabs[1].open:
        with tabs[1]:
            params = review.params
            if st.toggle("Differences only", key="params_differences"):
                params = deps.differences_only(params)
            tables.side_by_side(params, empty="No params differ.")
    if tabs[2].open:
        with tabs[2]:
            tables.side_by_side(review.tags, empty="No version tags.")
    if tabs[3].open:
        with tabs[3]:
            for number in chosen:
                if problem := deps.artifact_problem(name, number):
                    st.info(f"v{number}: {guard.escape_markdown(problem)}")
            tables.side_by_side(
                review.schema.set_index(["section", "column"]), empty="No signatures logged."
            )
    if tabs[4].open:
        with tabs[4]:
            if review.datasets.empty:
                st.info("No data sets were logged on these versions' runs.")
            else:
                st.dataframe(review.datasets, hide_index=True, width="stretch")
    if tabs[5].open:
        with tabs[5]:
            history(review)


@st.fragment  # picking metrics or the axis redraws this chart only
def history(review) -> None:
    keys = sorted({k for m in review.metrics.values() for k in m})
    chosen_keys = st.multiselect("Metrics", keys, default=keys[:1], key="version_history")
    by = st.radio("X axis", ["step", "wall time"], horizontal=True, key="version_history_by")
    if chosen_keys and review.run_labels:
        charts.history(deps.history(review.run_labels, tuple(chosen_keys)), by=by)


guard.require()
errors.run_page(main)
