"""Drift: a model version's reference data against current data (logged or uploaded).

Evidently's DataDriftPreset verdict appears at once (computed natively, cached on disk by
content); Evidently's own full report builds in the background once its tab is opened, and
appears when ready.
Shareable: ?model=X&version=N; ?model=X&version=N&batch=ID shows a monitored production
batch (its stored verdict, and Evidently's report on demand from the same data).
"""

import pandas as pd
import streamlit as st

import app.deps as deps
from app.entities import DriftConfig
from app.ui import drift_views, errors, guard, monitoring_views, pickers, query
from app.ui.text import md_join


def choose_data() -> tuple[str, pd.DataFrame, pd.DataFrame] | None:
    name = pickers.model(deps.registered_models())
    if name is None:
        st.info("No registered models in this store yet.")
        return None
    items = {v.version: v for v in sorted(deps.versions(name), key=lambda v: int(v.version))}
    number = query.selectbox(
        "Version",
        list(items),
        "version",
        format_func=lambda n: pickers.version_text(items[n]),
        default=list(items)[-1] if items else None,
    )
    run_id = items[number].run_id if number else ""
    paths = deps.data_artifacts(run_id) if run_id else ()
    if not paths:
        st.info("This version's run logged no CSV or Parquet data set to use as reference.")
        return None
    ref_default, cur_default = deps.default_data_pair(run_id)
    left, right = st.columns(2)
    ref_path = left.selectbox(
        "Reference (logged with the version's run)", paths, index=paths.index(ref_default)
    )
    reference = deps.logged_data(run_id, ref_path)
    source = right.radio("Current data", ["Logged data set", "Upload"], horizontal=True)
    if source == "Upload":
        upload = right.file_uploader("CSV or Parquet file", type=["csv", "parquet"])
        if upload is None:
            st.info("Upload the current data (same columns as the reference).")
            return None
        current = deps.uploaded_data(upload.getvalue(), upload.name)
    else:
        logged = deps.logged_datasets(name)
        options = [k for k in logged if logged[k] != (run_id, ref_path)]
        default = f"v{number}: {cur_default}"
        label = right.selectbox(
            "Current (any logged data set of this model)",
            options,
            index=options.index(default) if default in options else 0,
        )
        current = deps.logged_data(*logged[label])
        # Scored data sets carry a prediction column the reference lacks: compare the rest.
        extra = [c for c in current.columns if c not in reference.columns]
        if extra:
            st.caption(f"Only in the current data, left out: {md_join(extra)}")
            current = current.drop(columns=extra)
    deps.check_compatible(reference, current)
    return f"{name}-v{number}", reference, current


def batch_view(actor: str, batch_id: str) -> None:
    info, result = deps.monitoring_batch(actor, batch_id)
    monitoring_views.batch_drift(
        info,
        result,
        lambda: deps.monitoring_batch_frames(actor, batch_id),
        deps.distribution,
        lambda ref, cur: deps.start_drift_report(ref, cur, DriftConfig()),
        deps.drift_report_state,
    )


def main() -> None:
    st.title("Drift")
    user = guard.current_user()
    if query.get("batch") and user is not None:
        batch_view(user.username, query.get("batch"))
        return
    chosen = choose_data()
    if chosen is None:
        return
    name, reference, current = chosen
    with st.expander("Column roles, methods and thresholds"):
        table = st.data_editor(
            deps.roles_table(current),
            hide_index=True,
            width="stretch",
            disabled=["column"],
            key=f"roles_{name}",
            column_config={
                "role": st.column_config.SelectboxColumn(options=list(deps.drift_roles())),
                "method": st.column_config.SelectboxColumn(
                    options=["", *deps.drift_methods()], help="empty: Evidently's default"
                ),
                "threshold": st.column_config.NumberColumn(help="empty: the method's default"),
            },
        )
        share = st.slider("Drift share threshold", 0.05, 1.0, 0.5, 0.05, key="drift_share")
        sample = st.number_input(
            "Sample each data set to at most N rows (0: all rows)",
            min_value=0,
            value=0,
            step=10_000,
            key="drift_sample",
        )
    config = deps.drift_config(table, share, int(sample) or None)
    result = deps.drift(reference, current, config)
    drift_views.verdict(result)
    # Only the open tab runs: the charts and Evidently's multi-megabyte report are built and
    # sent when someone looks at them, not on every visit of the verdict.
    columns, scores, distributions, report = st.tabs(
        ["Columns", "Scores", "Distributions", "Evidently report"],
        key="drift_tab",
        on_change="rerun",
    )
    if columns.open:
        with columns:
            drift_views.results_table(result)
    if scores.open:
        with scores:
            drift_views.scores_chart(result)
    if distributions.open:
        with distributions:
            distribution(result, reference, current)
    if report.open:
        with report:
            key = deps.start_drift_report(reference, current, config)
            drift_views.report_panel(lambda: deps.drift_report_state(key), f"{name}.html")


@st.fragment  # picking a column redraws this chart only
def distribution(result, reference: pd.DataFrame, current: pd.DataFrame) -> None:
    kinds = {c.column: c.type for c in result.columns}
    column = st.selectbox("Column", list(kinds), key="drift_column")
    if column:
        frame = deps.distribution(reference[column], current[column], kinds[column])
        drift_views.distribution(frame, column)


guard.require()
errors.run_page(main)
