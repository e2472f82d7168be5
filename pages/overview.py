"""Overview: counts, the latest runs, and every registered model with its aliases and stages."""

import pandas as pd
import streamlit as st

import app.deps as deps
from app.ui import errors, governance as gov, guard, navigation
from app.ui.store_label import store_label
from app.ui.text import md_code
from governance.domain import Permission

LINKED_MODELS = 12


def models_frame() -> pd.DataFrame:
    rows = []
    for m in deps.registered_models():
        stages = {v.stage: v.version for v in m.latest_versions if v.stage and v.stage != "None"}
        rows.append(
            {
                "model": m.name,
                "aliases": ", ".join(f"{a} → v{v}" for a, v in sorted(m.aliases.items())),
                "stages": ", ".join(f"{s} → v{v}" for s, v in sorted(stages.items())),
                "latest version": max((int(v.version) for v in m.latest_versions), default=None),
                "description": m.description,
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    st.title("Overview")
    settings = deps.get_settings()
    st.caption(f"Tracking store: {md_code(store_label(settings.tracking_uri))}")
    user = guard.current_user()
    with gov.secondary("Out-of-band check"):
        if user and guard.may(user, Permission.RECONCILE) and st.button("Reconcile with MLflow"):
            with st.spinner("Comparing MLflow's aliases and stages with the ledger…"):
                found = deps.get_governance().reconcile(user.username)
            st.caption(f"Reconcile: {len(found)} difference(s) between MLflow and the ledger.")
        gov.out_of_band(deps.out_of_band(user.username) if user else [])
    with gov.secondary("Monitoring alerts"):
        if user:
            gov.monitoring_alerts(
                deps.monitoring_flags(user.username),
                deps.finding_closer(user.username, guard.may(user, Permission.MONITOR)),
            )
    counts = deps.counts()
    for col, (name, value) in zip(st.columns(len(counts) or 1), counts.items(), strict=False):
        col.metric(name.replace("_", " ").capitalize(), value)

    st.subheader("Registered models")
    models = models_frame()
    if models.empty:
        st.info("No registered models yet.")
    else:
        st.dataframe(models, hide_index=True, width="stretch")
        # A link per model up to a bound: a store with hundreds of models gets the Models page.
        shown = list(models["model"])[:LINKED_MODELS]
        cols = st.columns(min(len(shown), 4))
        for i, name in enumerate(shown):
            with cols[i % len(cols)]:
                navigation.link("models.py", f"Open {name}", query={"model": name})
        if len(models) > len(shown):
            navigation.link("models.py", f"All {len(models)} models")

    st.subheader("Recent activity")
    with gov.secondary("Activity"):
        gov.feed(deps.activity(user.username, limit=15) if user else [])

    st.subheader("Recent runs")
    recent = deps.recent_runs(10)
    if not recent:
        st.info("No runs yet.")
        return
    frame = deps.runs_frame(recent)
    metric_cols = [c for c in frame.columns if c.startswith("metrics.")][:6]
    shown = ["run_name", "status", "user", "start_time", *metric_cols]
    st.dataframe(frame[shown], hide_index=True, width="stretch")
    ids = [r.run_id for r in recent[:3]]
    if len(ids) >= 2:
        navigation.link("compare_runs.py", "Compare the latest runs", query={"runs": ",".join(ids)})


guard.require()
errors.run_page(main)
