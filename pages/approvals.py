"""Approvals: the inbox of requests you may sign, and the review packet of one request with the
sign-off (an electronic signature: comment plus the password entered again). ?request=ID."""

import uuid

import streamlit as st

import app.deps as deps
from app.entities import SignedInUser, SigningEligibility
from app.ui import errors, governance as gov, guard, login, query
from app.ui.text import md_escape, md_join
from governance.domain import REAUTH_PASSWORD, Permission, RequestDetails, State

USER = guard.require(Permission.SIGN)
FLASH = "approvals_flash"
USED = "approvals_used_tokens"


def inbox(user: SignedInUser) -> None:
    st.subheader("Waiting for your signature")
    items = deps.signing_inbox(user.username, user.roles)
    if not items:
        st.info("Nothing is waiting for your signature.")
    for details, _verdict in items:
        req = details.request
        st.markdown(
            f"{guard.escape_markdown(gov.request_title(req))} — requested by "
            f"{guard.escape_markdown(req.requester)}, {details.approvals} of {details.quorum} "
            f"approvals"
        )
        if st.button(f"Open request {req.id}", key=f"open_{req.id}"):
            st.query_params["request"] = req.id
            st.rerun()


def sign_form(user: SignedInUser, details: RequestDetails) -> None:
    req = details.request
    method = login.signing_reauth(user)
    if method is None:
        return
    # One token per rendered form: a second delivery of the same submit is answered, not re-sent.
    token_key = f"sign_token_{req.id}"
    token = st.session_state.setdefault(token_key, uuid.uuid4().hex)
    with st.form(f"sign_{req.id}"):
        comment = st.text_area("Comment", placeholder="Required: what you checked and why")
        password = ""
        if method == REAUTH_PASSWORD:
            password = st.text_input("Password", type="password", autocomplete="current-password")
        left, right = st.columns(2)
        approve = left.form_submit_button("Approve", type="primary")
        reject = right.form_submit_button("Reject")
    if not (approve or reject):
        return
    used: set[str] = st.session_state.setdefault(USED, set())
    if token in used:
        st.info("already recorded")
        return
    with errors.guard(stop=False), st.spinner("Recording your signature…"):
        result = deps.get_governance().sign_off(
            user.username,
            req.id,
            decision="approve" if approve else "reject",
            comment=comment,
            content_hash=req.content_hash,
            password=password if method == REAUTH_PASSWORD else None,
            reauth=None if method == REAUTH_PASSWORD else deps.oidc_reauthentication(),
        )
        used.add(token)
        st.session_state[token_key] = uuid.uuid4().hex
        deps.after_write()
        st.session_state[FLASH] = result.message
        st.rerun()


def packet(user: SignedInUser, request_id: str) -> None:
    details = deps.request_details(user.username, request_id)
    with st.container():  # a review packet of any length keeps the sign-off form in one place
        verdict = review(user, details)
    if verdict.may_sign:
        sign_form(user, details)


def review(user: SignedInUser, details: RequestDetails) -> SigningEligibility:
    req = details.request
    st.subheader(md_escape(gov.request_title(req)))
    st.markdown(f"**State:** {gov.state_text(req.state)}")
    flash = st.session_state.pop(FLASH, None)
    if flash:
        st.success(md_escape(flash))
    gov.outcome(details)
    if req.state == State.EXECUTION_FAILED and st.button("Retry", type="primary"):
        with errors.guard(stop=False), st.spinner("Applying the decision to MLflow…"):
            done = deps.get_governance().execute(user.username, req.id)
            deps.after_write()
            st.session_state[FLASH] = f"retry: {done.request.state}"
            st.rerun()
    st.markdown(
        f"**Requested by** {guard.escape_markdown(req.requester)} on "
        f"{req.created_at:%Y-%m-%d %H:%M} UTC, expires {req.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    st.markdown("**Justification**")
    st.text(req.justification)
    st.caption(f"Content SHA-256 (what you sign): `{req.content_hash}`")
    verdict = deps.signing_eligibility(user.username, user.roles, details)
    st.markdown(
        f"**Policy** `{req.policy_hash[:12]}`: {details.quorum} approval(s) from "
        f"{md_join(details.approver_roles, ' or ')}."
    )
    reason = md_escape(verdict.reason)
    (st.info if verdict.may_approve else st.warning)(
        f"Why you may sign: {reason}" if verdict.may_sign else reason
    )
    gov.evidence(req.evidence_dict(), req.evidence_hash)
    st.markdown("**Votes so far**")
    gov.votes(details)
    gov.reset_notices(details)
    return verdict


def main(user: SignedInUser) -> None:
    st.title("Approvals")
    request_id = query.get("request")
    if request_id:
        if st.button("Back to the inbox"):
            del st.query_params["request"]
            st.rerun()
        packet(user, request_id)
    else:
        inbox(user)


errors.run_page(lambda: main(USER))
