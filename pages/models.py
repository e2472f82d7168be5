"""Registered models: versions, aliases, stages, tags, descriptions, source runs, authors and
the data sets each version was trained and evaluated on. ?model=NAME&version=N."""

import pandas as pd
import streamlit as st

import app.deps as deps
from app.ui import (
    errors,
    governance as gov,
    guard,
    history,
    lineage,
    navigation,
    pickers,
    query,
    tables,
)
from app.ui.text import md_code, md_escape, md_join
from governance.domain import Permission


def description(text: str) -> None:
    """A description from MLflow, shown as it was written (plain text, never Markdown)."""
    if text:
        st.text(text)
    else:
        st.caption("No description.")


def main() -> None:
    st.title("Models")
    models = deps.registered_models()
    if not models:
        st.info("No registered models in this store yet.")
        return
    st.dataframe(
        pd.DataFrame(
            {
                "model": m.name,
                "aliases": ", ".join(f"{a} → v{v}" for a, v in sorted(m.aliases.items())),
                "description": m.description,
                "tags": ", ".join(f"{k}={v}" for k, v in sorted(m.tags.items())),
            }
            for m in models
        ),
        hide_index=True,
        width="stretch",
    )
    name = pickers.model(models)
    model = next(m for m in models if m.name == name)
    st.header(md_escape(model.name))
    user = guard.current_user()
    with gov.secondary("Out-of-band check"):
        gov.out_of_band(deps.out_of_band(user.username, model.name) if user else [])
    with gov.secondary("Monitoring alerts"):
        if user:
            gov.monitoring_alerts(
                deps.monitoring_flags(user.username, model.name),
                deps.finding_closer(user.username, guard.may(user, Permission.MONITOR)),
            )
        navigation.link("monitoring.py", "Monitoring over time", query={"model": model.name})
    description(model.description)
    tables.key_values(model.tags, empty="No model tags.")

    items = sorted(deps.versions(model.name), key=lambda v: int(v.version), reverse=True)
    st.subheader("Versions")
    tables.versions(items)
    with st.expander("History of aliases and stages", expanded=True), gov.secondary("History"):
        if user:
            history.show(deps.target_history(user.username, model.name))
    if not items:
        return
    by_number = {v.version: v for v in items}
    number = query.selectbox(
        "Version",
        list(by_number),
        "version",
        format_func=lambda n: pickers.version_text(by_number[n]),
    )
    version = by_number[number]
    st.subheader(f"Version {md_escape(version.version)}")
    left, right = st.columns(2)
    left.markdown(f"**Author:** {md_escape(version.author or 'unknown')}")
    stage = version.stage if version.stage not in ("", "None") else "none"
    left.markdown(f"**Stage:** {md_escape(stage)}")
    left.markdown(f"**Aliases:** {md_join(version.aliases) or 'none'}")
    right.markdown(f"**Source run:** {md_code(version.run_id or 'none')}")
    if version.model_id:
        right.markdown(f"**Logged model:** {md_code(version.model_id)}")
    right.markdown(f"**Status:** {md_escape(version.status)}")
    right.markdown(
        f"**Created:** {version.creation_time:%Y-%m-%d %H:%M UTC}" if version.creation_time else ""
    )
    description(version.description)
    tables.key_values(version.tags, empty="No version tags.")

    logged = deps.logged_model(version.model_id)
    run_id = version.run_id or (logged.source_run_id if logged else "")
    run, _ = deps.known_runs((run_id,)) if run_id else ([], [])
    lineage.show(
        version,
        logged,
        run_id,
        deps.run_datasets(run_id) if run else [],
        deps.missing_dataset_inputs(run_id) if run else 0,
    )
    if run:
        with st.expander("Source run params and metrics"):
            tables.key_values(run[0].params, empty="No params.")
            tables.key_values(run[0].metrics, empty="No metrics.")
        navigation.link(
            "experiments.py",
            "Open the source run in Experiments",
            query={"experiment": run[0].experiment_id, "filter": f"attributes.run_id = '{run_id}'"},
        )
    others = [n for n in by_number if n != number][:1]
    navigation.link(
        "compare_versions.py",
        "Compare this version",
        query={"model": model.name, "versions": ",".join([*others, number])},
    )
    st.subheader("Activity")
    with gov.secondary("Activity"):
        gov.feed(deps.activity(user.username, model.name) if user else [])


guard.require()
errors.run_page(main)
