"""The sign-in gate: nothing below it runs until someone is signed in.

`gate()` is called by app/main.py before `st.navigation`. It keeps the signed-in user in the
session, expires it after inactivity, re-reads roles on every interaction (so disabling a user
takes effect at once), and draws the "Log out" button in the sidebar.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st

from app.deps import USER_ERRORS, get_identity
from app.entities import SignedInUser
from app.errors import UserFacingError
from app.ui.guard import SESSION_KEY, current_user, escape_markdown
from governance.errors import GovernanceError, PasswordChangeRequired

if TYPE_CHECKING:
    from app.deps import IdentityService

NOTICE_KEY = "countersign_sign_in_notice"
FAILURES_KEY = "countersign_sign_in_failures"
CHANGE_KEY = "countersign_password_change_for"  # the user who must choose a new password
FIRST_ADMIN_COMMAND = "python -m app.cli users add NAME --role admin --password-stdin"


def gate(keep_page: Callable[[], object] | None = None) -> SignedInUser:
    """Return the signed-in user, or draw the sign-in page for the configured mode and stop.

    Args:
        keep_page: Called before stopping; registers the pages (hidden, never run) so that the
            page asked for by URL is still the one shown once the person has signed in.
    """
    try:
        identity = get_identity()
    except (*USER_ERRORS, GovernanceError) as exc:  # e.g. the schema needs `db upgrade`
        _title()
        st.error(str(exc))
        st.stop()
    user = current_user()
    if user is not None:
        try:
            user = identity.touch(user)
        except (UserFacingError, GovernanceError) as exc:
            _forget(str(exc))
            if identity.mode == "oidc" and st.user.get("is_logged_in"):
                st.logout()  # otherwise the provider's cookie would sign them straight back in
        else:
            st.session_state[SESSION_KEY] = user
            _sidebar(user, identity.mode)
            return user
    # An identity vouched for by the provider or the proxy is accepted in this very run: a rerun
    # now would happen before st.navigation and so drop the page asked for by URL.
    vouched = None
    if identity.mode == "header":
        vouched = _header_sign_in(identity)
    elif identity.mode == "oidc":
        vouched = _oidc_sign_in(identity)
    else:
        _local_sign_in(identity)
    if vouched is not None:
        _accept(vouched)
        _sidebar(vouched, identity.mode)
        return vouched
    if keep_page is not None:
        keep_page()
    st.stop()


def sign_out() -> None:
    """Forget the signed-in user (and the provider's session cookie in OIDC mode)."""
    mode = get_identity().mode
    _forget("You are signed out.")
    if mode == "oidc":
        st.logout()
    st.rerun()


def _forget(notice: str) -> None:
    st.session_state.pop(SESSION_KEY, None)
    st.session_state[NOTICE_KEY] = notice


def _accept(user: SignedInUser) -> None:
    st.session_state[SESSION_KEY] = user
    st.session_state.pop(NOTICE_KEY, None)


def _sidebar(user: SignedInUser, mode: str) -> None:
    with st.sidebar:
        name = escape_markdown(user.display_name or user.username)
        st.caption(f"Signed in as **{name}** ({escape_markdown(', '.join(user.roles))})")
        # Behind a trusted proxy the proxy owns the session; a button here would not sign out.
        if mode != "header" and st.button("Log out", key="countersign_log_out"):
            sign_out()


def _title() -> None:
    st.title("Countersign")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(notice)


def _local_sign_in(identity: IdentityService) -> None:
    _title()
    if identity.needs_first_admin():
        st.warning("No administrator exists yet, so nobody can sign in.")
        st.markdown("Create the first administrator on the server, then reload this page:")
        st.code(FIRST_ADMIN_COMMAND, language="bash")
        st.caption(
            "The command reads the password from standard input; it is stored as an argon2 hash."
        )
        return
    if CHANGE_KEY in st.session_state:
        _change_password(identity, st.session_state[CHANGE_KEY])
        return
    with st.form("countersign_sign_in", width=420):
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        failures: dict[str, int] = st.session_state.setdefault(FAILURES_KEY, {})
        try:
            user = identity.sign_in_password(username, password)
        except PasswordChangeRequired:
            st.session_state[CHANGE_KEY] = username.strip()
            st.rerun()
        except (UserFacingError, GovernanceError) as exc:
            key = username.strip().lower()
            failures[key] = failures.get(key, 0) + 1
            st.error(str(exc))
            locked = identity.lockout_notice(failures[key])
            if locked:
                st.warning(locked)
            else:
                st.caption(identity.attempts_left_notice(failures[key]) or "")
        else:
            failures.pop(username.strip().lower(), None)
            _accept(user)
            st.rerun()
    _demo_accounts(identity)


def _change_password(identity: IdentityService, username: str) -> None:
    """After an admin reset: prove the password the admin set, choose a new one, sign in."""
    st.info(
        f"An administrator reset the password of **{escape_markdown(username)}**. "
        "Choose a new one to continue."
    )
    with st.form("countersign_change_password", width=420):
        current = st.text_input(
            "Password the administrator gave you", type="password", autocomplete="current-password"
        )
        new = st.text_input("New password", type="password", autocomplete="new-password")
        repeated = st.text_input("New password again", type="password", autocomplete="new-password")
        submitted = st.form_submit_button("Change password and log in", type="primary")
    if submitted:
        try:
            user = identity.change_password_and_sign_in(username, current, new, repeated)
        except (UserFacingError, GovernanceError) as exc:
            st.error(str(exc))
        else:
            st.session_state.pop(CHANGE_KEY, None)
            _accept(user)
            st.rerun()
    if st.button("Sign in as someone else"):
        st.session_state.pop(CHANGE_KEY, None)
        st.rerun()


def _demo_accounts(identity: IdentityService) -> None:
    accounts = identity.demo_accounts()
    if not accounts:
        return
    st.subheader("Demo users")
    st.caption("Demo mode: these accounts and passwords exist only in the seeded demo store.")
    st.table(
        [
            {"Username": a.username, "Role": a.role, "Password": a.password, "Who": a.note}
            for a in accounts
        ]
    )


def _oidc_sign_in(identity: IdentityService) -> SignedInUser | None:
    """The person signed in at the provider, or None after drawing the sign-in page."""
    if "is_logged_in" not in st.user:  # Streamlit adds the key only when [auth] is configured
        _title()
        st.error(
            "OIDC sign-in is selected (COUNTERSIGN_AUTH=oidc) but .streamlit/secrets.toml has "
            "no [auth] section. See the README, section Signing in."
        )
        return None
    if st.user.get("is_logged_in"):
        try:
            return identity.from_oidc(st.user.to_dict())
        except (UserFacingError, GovernanceError) as exc:
            _title()
            st.error(str(exc))
            if st.button("Log out"):
                st.logout()
            return None
    _title()
    st.write("Sign in with your organisation's identity provider.")
    if st.button("Log in", type="primary"):
        st.login()
    return None


def _header_sign_in(identity: IdentityService) -> SignedInUser | None:
    """The user named by the trusted proxy, or None after explaining what is missing."""
    try:
        return identity.from_headers(dict(st.context.headers))
    except (UserFacingError, GovernanceError) as exc:
        _title()
        st.error(str(exc))
        return None


def signing_reauth(user: SignedInUser) -> str | None:
    """How the user re-authenticates to sign, or None after explaining what to do first.

    Returns "password" (the sign-off form then asks for the password) or "oidc-recent-login"
    (an OIDC sign-in younger than the configured minutes). For an older OIDC sign-in it shows a
    "Sign in again" button and returns None: the caller must not offer the sign-off.
    """
    identity = get_identity()
    try:
        return identity.signing_reauth_method(user)
    except UserFacingError as exc:
        st.warning(str(exc))
        st.caption("You will come back to the Overview: open this request again from Approvals.")
        if st.button("Sign in again"):
            st.login()
        return None
