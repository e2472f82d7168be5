"""The sign-in gate: nothing below it runs until someone is signed in.

`gate()` is called by app/main.py before `st.navigation`. In local mode a sign-in is a
server-side session: the page then has the browser collect its HttpOnly cookie
(app.ui.handover), and a tab opened or reloaded later resumes the session from that cookie.
Every interaction checks the session again (so logging out in one tab, an admin's revocation,
a disabled account or a timeout ends it everywhere) and re-reads the roles; the sidebar has
"Log out". The page and query asked for before signing in are the ones shown after it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st

from app.deps import USER_ERRORS, get_identity
from app.entities import SESSION_COOKIE, SignedInUser
from app.errors import UserFacingError
from app.ui import handover, navigation
from app.ui.guard import SESSION_KEY, current_user, escape_markdown
from app.ui.text import md_escape, md_table
from governance.errors import GovernanceError, PasswordChangeRequired

if TYPE_CHECKING:
    from app.deps import IdentityService

NOTICE_KEY = "countersign_sign_in_notice"
FAILURES_KEY = "countersign_sign_in_failures"
CHANGE_KEY = "countersign_password_change_for"  # the user who must choose a new password
GRANT_KEY = "countersign_cookie_grant"  # a session grant the page has yet to hand over
CLEAR_KEY = "countersign_clear_cookie"  # the page should have the browser drop its cookie
TRIED_KEY = "countersign_cookie_tried"  # digest of the cookie this tab tried to resume
TARGET_KEY = "countersign_sign_in_target"  # (page url_path, query) asked for before sign-in
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
        st.error(md_escape(exc))
        st.stop()
    user = current_user()
    if user is not None:
        try:
            user = identity.touch(user)
        except (UserFacingError, GovernanceError) as exc:
            _forget(str(exc))
            st.session_state[CLEAR_KEY] = bool(user.session_id)
            if identity.mode == "oidc" and st.user.get("is_logged_in"):
                st.logout()  # otherwise the provider's cookie would sign them straight back in
        else:
            st.session_state[SESSION_KEY] = user
            _sidebar(user, identity.mode, st.session_state.pop(GRANT_KEY, ""))
            return user
    # An identity vouched for by a session cookie, the provider or the proxy is accepted in this
    # very run: a rerun now would happen before st.navigation and so drop the page of the URL.
    vouched = None
    if identity.mode == "header":
        vouched = _header_sign_in(identity)
    elif identity.mode == "oidc":
        vouched = _oidc_sign_in(identity)
    else:
        vouched = _from_cookie(identity)
        if vouched is None:
            _local_sign_in(identity)
    if vouched is not None:
        _accept(vouched)
        _sidebar(vouched, identity.mode)
        return vouched
    if keep_page is not None:
        page = keep_page()
        if identity.mode == "local" and TARGET_KEY not in st.session_state:
            url_path = str(getattr(page, "url_path", "") or "")
            st.session_state[TARGET_KEY] = (url_path, st.query_params.to_dict())
    st.stop()


def return_to_target(current: object) -> None:
    """After signing in, show the page and query the person asked for before (a link from a
    notification, a colleague's link), had anything on the way lost them."""
    target = st.session_state.pop(TARGET_KEY, None)
    if target is None or current_user() is None:
        return
    url_path, query = target
    if query and st.query_params.to_dict() != query:
        st.query_params.from_dict(query)
    if url_path != str(getattr(current, "url_path", "") or ""):
        spec = next((p for p in navigation.visible_pages() if p.url_path == url_path), None)
        if spec is not None:
            st.switch_page(str(spec.path), query_params=query)


def sign_out() -> None:
    """End the session server-side for every tab, drop the cookie, and forget the user here
    (and the provider's session cookie in OIDC mode)."""
    identity = get_identity()
    user = current_user()
    if user is not None:
        # A session ended already (in another tab, by an admin, by a timeout) needs no end.
        with contextlib.suppress(UserFacingError, GovernanceError):
            identity.sign_out(user)
    _forget("You are signed out.")
    st.session_state[CLEAR_KEY] = identity.mode == "local"
    if identity.mode == "oidc":
        st.logout()
    st.rerun()


def _from_cookie(identity: IdentityService) -> SignedInUser | None:
    """The person whose session this browser's cookie names, tried once per tab."""
    secret = st.context.cookies.get(SESSION_COOKIE)
    if not isinstance(secret, str) or not secret:
        return None
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()
    if st.session_state.get(TRIED_KEY) == digest:
        return None  # tried already: ended, or this tab signed out since
    st.session_state[TRIED_KEY] = digest
    try:
        return identity.resume(secret)
    except (UserFacingError, GovernanceError) as exc:
        st.session_state[NOTICE_KEY] = str(exc)
        st.session_state[CLEAR_KEY] = True
        return None


def _user_agent() -> str:
    agent = st.context.headers.get("User-Agent")
    return agent if isinstance(agent, str) else ""


def _forget(notice: str) -> None:
    st.session_state.pop(SESSION_KEY, None)
    st.session_state[NOTICE_KEY] = notice


def _accept(user: SignedInUser, grant: str = "") -> None:
    st.session_state[SESSION_KEY] = user
    st.session_state.pop(NOTICE_KEY, None)
    if grant:
        st.session_state[GRANT_KEY] = grant


def _sidebar(user: SignedInUser, mode: str, grant: str = "") -> None:
    with st.sidebar:
        name = escape_markdown(user.display_name or user.username)
        st.caption(f"Signed in as **{name}** ({escape_markdown(', '.join(user.roles))})")
        # Behind a trusted proxy the proxy owns the session; a button here would not sign out.
        if mode != "header" and st.button("Log out", key="countersign_log_out"):
            sign_out()
        # One slot on every run, filled only right after sign-in: an element that came and went
        # would move every later one, and Streamlit would rebuild them (a chosen tab resets).
        slot = st.empty()
        if grant:
            handover.collect_cookie(grant, slot)


def _title() -> None:
    st.title("Countersign")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(md_escape(notice))
    slot = st.empty()  # on every run of the sign-in page, so that nothing after it moves
    if st.session_state.pop(CLEAR_KEY, False):
        handover.clear_cookie(slot)


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
            user, grant = identity.sign_in_password(username, password, _user_agent())
        except PasswordChangeRequired:
            st.session_state[CHANGE_KEY] = username.strip()
            st.rerun()
        except (UserFacingError, GovernanceError) as exc:
            key = username.strip().lower()
            failures[key] = failures.get(key, 0) + 1
            st.error(md_escape(exc))
            locked = identity.lockout_notice(failures[key])
            if locked:
                st.warning(md_escape(locked))
            else:
                st.caption(md_escape(identity.attempts_left_notice(failures[key]) or ""))
        else:
            failures.pop(username.strip().lower(), None)
            _accept(user, grant)
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
            user, grant = identity.change_password_and_sign_in(
                username, current, new, repeated, _user_agent()
            )
        except (UserFacingError, GovernanceError) as exc:
            st.error(md_escape(exc))
        else:
            st.session_state.pop(CHANGE_KEY, None)
            _accept(user, grant)
            st.rerun()
    if st.button("Sign in as someone else"):
        st.session_state.pop(CHANGE_KEY, None)
        st.rerun()


def _demo_accounts(identity: IdentityService) -> None:
    accounts = identity.demo_accounts()
    if not accounts:
        return
    st.subheader("Demo users")
    st.caption(
        "Demo mode: these accounts and passwords exist only in the seeded demo store, which "
        "comes with a few weeks of promotion history."
    )
    st.table(
        md_table(
            {
                "Username": a.username,
                "Role": a.role,
                "Password": a.password,
                "Who": a.note,
                "What you will find": a.finds,
            }
            for a in accounts
        )
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
            st.error(md_escape(exc))
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
        st.error(md_escape(exc))
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
        st.warning(md_escape(exc))
        st.caption("You will come back to the Overview: open this request again from Approvals.")
        if st.button("Sign in again"):
            st.login()
        return None
