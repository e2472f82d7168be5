"""Audit log: every event, filterable by model, actor, action and time, with the result of the
chain verification and the signed audit bundle for offline checks. ?model=X&actor=Y&action=Z."""

from datetime import UTC, datetime, time

import pandas as pd
import streamlit as st

import app.deps as deps
from app.entities import SignedInUser
from app.ui import errors, governance as gov, guard, query
from app.ui.text import md_escape
from governance.domain import AuditAction, Permission

USER = guard.require(Permission.READ_AUDIT)
VERIFIED = "audit_verify_result"
BUNDLE = "audit_bundle_bytes"
ACTIONS = sorted(v for k, v in vars(AuditAction).items() if k.isupper())


def verification(user: SignedInUser) -> None:
    if VERIFIED not in st.session_state or st.button("Verify the chain again"):
        with st.spinner("Recomputing the hash chain…"):
            st.session_state[VERIFIED] = deps.verify_audit(user.username)
    result = st.session_state[VERIFIED]
    if result.ok:
        st.success(
            f"Chain verified up to seq {result.last_seq} ({result.count} entries); "
            f"head `{result.head_hash[:16]}…`"
        )
    else:
        st.error(
            f"Chain broken at seq {result.first_broken_seq}: {md_escape(result.reason)} "
            f"(verified up to seq {result.last_seq})"
        )


def bounds() -> tuple[str, str]:
    left, right = st.columns(2)
    since = left.date_input("From (UTC)", value=None, key="audit_since")
    until = right.date_input("To (UTC)", value=None, key="audit_until")
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    lo = datetime.combine(since, time.min, UTC).strftime(fmt) if since else ""
    hi = datetime.combine(until, time.max, UTC).strftime(fmt) if until else ""
    return lo, hi


def export(user: SignedInUser, model: str) -> None:
    st.subheader("Export")
    scope = f"model {md_escape(model)}" if model else "every model"
    if st.button(f"Build the audit bundle ({scope})"):
        with (
            st.status("Building the signed audit bundle…", expanded=True) as status,
            errors.guard(stop=False),
        ):
            st.session_state[BUNDLE] = deps.audit_bundle(user.username, (model,) if model else ())
            status.update(label="Audit bundle ready", state="complete")
    data = st.session_state.get(BUNDLE)
    if data:
        st.download_button(
            "Download audit bundle",
            data=data,
            file_name=f"countersign-audit-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.zip",
            mime="application/zip",
        )


def main(user: SignedInUser) -> None:
    st.title("Audit log")
    verification(user)
    models = ["", *[m.name for m in deps.registered_models()]]
    left, mid, right = st.columns(3)
    with left:
        # A filter, not a selection to carry over: the model last viewed on another page would
        # hide every other model's events from an auditor who opened the log from the menu.
        model = query.selectbox(
            "Model", models, "model", format_func=lambda m: m or "all models", key="audit_model"
        )
    with mid:
        who = query.text_input("Actor", "actor", placeholder="user name")
    with right:
        action = query.selectbox(
            "Action", ["", *ACTIONS], "action", format_func=lambda a: a or "all actions"
        )
    since, until = bounds()
    events = deps.audit_events(
        user.username,
        model=model or "",
        who=who,
        action=action or "",
        since=since,
        until=until,
        limit=500,
    )
    st.caption(f"{len(events)} event(s), newest first (at most 500).")
    gov.feed(events[:200], empty="No events match these filters.")
    if events:
        with st.expander("Table view with hashes"):
            st.dataframe(pd.DataFrame(e.__dict__ for e in events), hide_index=True, width="stretch")
    if guard.may(user, Permission.EXPORT_AUDIT):
        export(user, model or "")


errors.run_page(lambda: main(USER))
