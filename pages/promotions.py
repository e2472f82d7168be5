"""Promotions: request moving a model version to a target, see the evidence first, follow and
cancel your own requests; rollback requests; break-glass for admins. ?model=X&version=N&target=T."""

import streamlit as st

import app.deps as deps
from app.entities import SignedInUser
from app.ui import errors, governance as gov, guard, login, pickers, query
from app.ui.text import md_code, md_escape as esc, md_join
from governance.domain import REAUTH_PASSWORD, STAGE_TARGETS, Permission, State

USER = guard.require(Permission.REQUEST)
BASE_TARGETS = ("champion", "challenger", "Staging", "Production")


def pick() -> tuple[str, str, str] | None:
    model = pickers.model(deps.registered_models())
    if model is None:
        st.info("No registered models in this store yet.")
        return None
    items = sorted(deps.versions(model), key=lambda v: int(v.version), reverse=True)
    by_number = {v.version: v for v in items}
    left, right = st.columns(2)
    with left:
        version = query.selectbox(
            "Version",
            list(by_number),
            "version",
            format_func=lambda n: pickers.version_text(by_number[n]),
        )
    aliases = {a for v in items for a in v.aliases}
    targets = list(dict.fromkeys([*BASE_TARGETS, *sorted(aliases), *STAGE_TARGETS]))
    with right:
        # A model governed by legacy stages defaults to a stage, one with aliases to champion.
        staged = not aliases and any(v.stage in STAGE_TARGETS for v in items)
        default = "Production" if staged else "champion"
        target = query.selectbox("Target", targets, "target", default=default)
    return (model, str(version), str(target)) if version and target else None


def model_choice(key: str) -> str:
    names = [m.name for m in deps.registered_models()]
    picked = query.get("model")
    return st.selectbox(
        "Model", names, key=key, index=names.index(picked) if picked in names else 0
    )


def new_request(user_name: str) -> None:
    st.subheader("New promotion request")
    chosen = pick()
    if chosen is None:
        return
    model, version, target = chosen
    preview = None
    with errors.guard(stop=False), st.spinner("Capturing the evidence…"):
        preview = deps.evidence_preview(user_name, model, version, target)
    if preview is None:
        return
    # The evidence differs in length per target; its own container keeps the form below at one
    # place in the page, so a rerun never shows a stale second form that a user could type into.
    with st.container():
        st.markdown(
            f"Policy `{preview.policy_hash[:12]}` applies: **{preview.quorum}** approval(s) from "
            f"{md_join(preview.approver_roles, ' or ')}"
            + (", separation of duties" if preview.separation_of_duties else "")
        )
        gov.evidence(preview.data, preview.hash)
    with st.form("promotion_request", clear_on_submit=True):
        justification = st.text_area("Justification", placeholder="Why this version, why now")
        submitted = st.form_submit_button("Submit request", type="primary")
    if submitted:
        with errors.guard(stop=False):
            req = deps.get_governance().request_promotion(
                user_name, model, version, target, justification
            )
            st.success(f"Request {req.id} submitted: waiting for {preview.quorum} approval(s).")
            gov.open_request_link(req)


def my_requests(user_name: str) -> None:
    st.subheader("My requests")
    mine = [r for r in deps.requests(user_name) if r.requester == user_name]
    if not mine:
        st.caption("You have made no requests yet.")
        return
    for req in mine[:30]:
        left, right = st.columns([4, 1])
        title = guard.escape_markdown(gov.request_title(req))
        left.markdown(f"{md_code(req.id)} {gov.state_text(req.state)} — {title}")
        if req.state == State.PENDING and right.button("Cancel", key=f"cancel_{req.id}"):
            with errors.guard(stop=False):
                deps.get_governance().cancel(user_name, req.id, "cancelled by the requester")
                st.rerun()


def rollback(user_name: str) -> None:
    # Arriving from a model's history (?rollback_target=T&rollback_version=N) opens it filled in.
    asked = query.get("rollback_version")
    with (
        st.expander(
            "Request a rollback (restore an earlier holder of a target)", expanded=bool(asked)
        ),
        st.form("rollback_request"),
    ):
        model = model_choice("rb_model")
        target = st.text_input(
            "Target to roll back", value=query.get("rollback_target") or "champion", key="rb_target"
        )
        version = st.text_input("Version to restore (empty: the one before)", value=asked or "")
        why = st.text_area("Rollback justification", key="rb_justification")
        if st.form_submit_button("Request rollback"):
            with errors.guard(stop=False):
                req = deps.get_governance().request_rollback(
                    user_name, model, target, why, version.strip() or None
                )
                where = f"v{esc(req.version)} → {esc(req.target)}"
                st.success(f"Rollback request {req.id} opened: {where}.")


def break_glass(user: SignedInUser) -> None:
    st.subheader("🚨 Break-glass promotion")
    st.warning(
        "Emergency only: promotes AT ONCE without approvals. It is recorded as break-glass in the "
        "audit log and opens a follow-up review that approvers must sign."
    )
    method = login.signing_reauth(user)  # like a signature: the password again, or a recent OIDC
    if method is None:
        return
    with st.form("break_glass"):
        model = model_choice("bg_model")
        version = st.text_input("Version", key="bg_version")
        target = st.text_input("Target", value="champion", key="bg_target")
        why = st.text_area("Justification (required)", key="bg_justification")
        password = ""
        if method == REAUTH_PASSWORD:
            password = st.text_input("Your password", type="password", key="bg_password")
        sure = st.checkbox("I understand this bypasses the approval quorum", key="bg_sure")
        if st.form_submit_button("Break glass and promote now", type="primary"):
            if not sure:
                st.error("Tick the confirmation first.")
                return
            with errors.guard(stop=False), st.spinner("Promoting…"):
                result = deps.get_governance().break_glass(
                    user.username,
                    model,
                    version,
                    target,
                    why,
                    password=password if method == REAUTH_PASSWORD else None,
                    reauth=None if method == REAUTH_PASSWORD else deps.oidc_reauthentication(),
                )
                deps.after_write()
                st.error(
                    f"BREAK-GLASS executed: {esc(model)} v{esc(version)} → {esc(target)} (request "
                    f"{result.request.id}, state {result.execution.request.state}); follow-up "
                    f"review {result.follow_up.id} opened."
                )


def main(user: SignedInUser) -> None:
    st.title("Promotions")
    new_request(user.username)
    my_requests(user.username)
    rollback(user.username)
    if guard.may(user, Permission.BREAK_GLASS):
        break_glass(user)


errors.run_page(lambda: main(USER))
