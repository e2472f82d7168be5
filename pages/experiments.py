"""Experiments: pick one, search its runs with an MLflow filter, sort, page, choose columns,
and select runs to compare. Selections live in the URL (?experiment=ID&filter=...)."""

import streamlit as st

import app.deps as deps
from app.ui import charts, errors, guard, navigation, paging, pickers, query

ATTRIBUTES = ["start_time", "end_time", "run_name", "status"]
FILTER_HELP = (
    "MLflow search syntax, e.g. `metrics.rmse < 50 and params.max_depth = '5'` or "
    "`tags.team = 'fraud'` or `attributes.status = 'FINISHED'`. Leave empty for all runs."
)


def order_clause(key: str, descending: bool) -> str:
    if key in ATTRIBUTES:
        field = f"attributes.{key}"
    else:
        section, _, name = key.partition(".")
        field = f"{section}.`{name}`"
    return f"{field} {'DESC' if descending else 'ASC'}"


@st.fragment  # its toggle and axes rerun this part only, not the page's table of runs
def whole_experiment(exp_ids: tuple[str, ...]) -> None:
    """A scatter over every run of the experiment, read in one go only when asked for."""
    if not st.toggle("Chart every run of this experiment", key="whole_experiment"):
        return
    table, path = deps.runs_table(exp_ids)
    axes = [c for c in table.columns if c.startswith(("params.", "metrics."))]
    if len(table) < 2 or len(axes) < 2:
        st.info("Charts need at least two runs with params or metrics.")
        return
    left, right, colour = st.columns(3)
    x = left.selectbox("X", axes, key="all_x")
    y = right.selectbox("Y", axes, index=len(axes) - 1, key="all_y")
    by = colour.selectbox("Colour", ["user", "status", *axes], key="all_colour")
    charts.scatter(table, x, y, colour=by)
    st.caption(f"{len(table)} runs (read through the {path} path)")


def main() -> None:
    st.title("Experiments")
    for note in deps.store_notes():  # folder names come from the store: text, not Markdown
        st.info(guard.escape_markdown(note), icon=":material/folder_off:")
    experiment = pickers.experiment(deps.experiments())
    if experiment is None:
        st.info("No experiments in this tracking store yet.")
        return
    exp_ids = (experiment.experiment_id,)
    filter_string = query.text_input(
        "Filter runs", "filter", placeholder="metrics.rmse < 50", help=FILTER_HELP
    )
    c_sort, c_dir, c_size = st.columns([3, 1, 1])
    page_size = int(
        c_size.selectbox("Runs per page", [10, 25, 50, 100, 200], index=3, key="runs_page_size")
    )
    # Sortable keys come from the first page of this search (cached), never from all runs.
    sample = deps.runs_frame(list(deps.runs_page(exp_ids, filter_string, (), page_size, None).runs))
    keys = ATTRIBUTES + [c for c in sample.columns if c.startswith(("metrics.", "params."))]
    sort_key = c_sort.selectbox("Sort by", keys, key="runs_sort")
    descending = c_dir.toggle("Descending", value=True, key="runs_descending")
    order = (order_clause(sort_key, descending),)
    collapse = st.toggle(
        "Collapse child runs",
        key="collapse_children",
        help="Show top-level runs only, each with its number of child runs, as MLflow's UI does.",
    )
    search = deps.top_level_filter(filter_string) if collapse else filter_string

    token, _ = paging.current_token((exp_ids, search, order, page_size))
    page = deps.runs_page(exp_ids, search, order, page_size, token)
    children = deps.child_run_counts(exp_ids) if collapse else None
    frame = deps.runs_tree(list(page.runs), children)
    optional = [c for c in frame.columns if c.startswith(("params.", "metrics.", "tags."))]
    default = [c for c in optional if c.startswith("metrics.")] + [
        c for c in optional if c.startswith("params.")
    ][:5]
    chosen = pickers.columns(optional, key="runs_columns", default=default)
    nesting = ["parent run", *(["child runs"] if collapse else [])]
    st.dataframe(
        frame[["run_name", "run_id", *nesting, "status", "user", "start_time", *chosen]],
        hide_index=True,
        width="stretch",
    )
    paging.controls(page.next_token, len(frame), page_size)

    whole_experiment(exp_ids)
    st.subheader("Compare runs")
    labels = st.session_state.setdefault("run_labels", {})
    labels.update({r.run_id: f"{r.run_name} ({r.run_id[:8]})" for r in page.runs})
    picked = st.session_state.get("compare_pick", [])
    options = list(dict.fromkeys([*picked, *(r.run_id for r in page.runs)]))
    selected = st.multiselect(
        "Runs to compare",
        options,
        key="compare_pick",
        format_func=lambda r: labels.get(r, r),
        help="Pick two or more runs; picks are kept while you page through the table.",
    )
    if len(selected) >= 2:
        navigation.link(
            "compare_runs.py", f"Compare {len(selected)} runs", query={"runs": ",".join(selected)}
        )
    else:
        st.caption("Select at least two runs to compare them.")


guard.require()
errors.run_page(main)
