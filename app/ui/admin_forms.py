"""The Admin page's users table and forms.

No I/O: each form returns what was submitted (or None) and the page makes the one facade call,
so the service decides and audits. Every mutation sits in an `st.form`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from governance.domain import BrowserSession, User


@dataclass(frozen=True)
class NewUser:
    """The "Add a user" form as submitted (the name stripped)."""

    name: str
    display_name: str
    roles: tuple[str, ...]
    password: str


def users_frame(users: Sequence[User]) -> pd.DataFrame:
    """One row per user, without the password hash."""
    return pd.DataFrame(
        [
            {
                "user": u.name,
                "name": u.display_name,
                "roles": ", ".join(u.roles),
                "status": "disabled" if u.disabled else "active",
                "locked until": u.locked_until,
                "created": u.created_at,
            }
            for u in users
        ]
    )


def add_user_form(role_choices: Sequence[str]) -> NewUser | None:
    with st.form("admin_add_user", clear_on_submit=True):
        st.subheader("Add a user")
        name = st.text_input("User name")
        display = st.text_input("Full name")
        roles = st.multiselect("Roles", role_choices, default=["viewer"])
        password = st.text_input("Initial password", type="password")
        if st.form_submit_button("Add user"):
            return NewUser(name.strip(), display, tuple(roles), password)
    return None


def pick_user_form(
    key: str, title: str, label: str, button: str, names: Sequence[str], caption: str = ""
) -> str | None:
    """A form with one user picker and one button; the picked name once submitted."""
    with st.form(key):
        st.subheader(title)
        if caption:
            st.caption(caption)
        name = st.selectbox(label, names, index=None)
        if st.form_submit_button(button) and name:
            return str(name)
    return None


def reset_form(names: Sequence[str]) -> tuple[str, str] | None:
    """(user, new password) once submitted."""
    with st.form("admin_reset_password", clear_on_submit=True):
        st.subheader("Reset a password")
        name = st.selectbox("User", names, index=None)
        password = st.text_input("New password", type="password")
        if st.form_submit_button("Reset password") and name:
            return str(name), password
    return None


def roles_form(users: Sequence[User], role_choices: Sequence[str]) -> tuple[str, list[str]] | None:
    """(user, roles) once submitted. The user is picked outside the form, so the roles field
    can start from that user's current roles; the form is keyed by the user's name."""
    st.subheader("Change roles")
    by_name = {u.name: u for u in users}
    name = st.selectbox("User whose roles to change", list(by_name), index=None)
    user = by_name.get(name) if name else None
    if user is None:
        return None
    # A role the policy no longer names stays visible, so the admin sees it and can remove it.
    options = [*role_choices, *(r for r in user.roles if r not in role_choices)]
    with st.form(f"admin_roles_{user.name}"):
        roles = st.multiselect("New roles", options, default=list(user.roles))
        if st.form_submit_button("Save roles"):
            return user.name, list(roles)
    return None


def enable_form(disabled: Sequence[str]) -> str | None:
    """The disabled user to enable once submitted; a note when nobody is disabled."""
    if not disabled:
        st.subheader("Enable a user")
        st.caption("No user is disabled.")
        return None
    caption = "Enabling also lifts a lockout."
    return pick_user_form(
        "admin_enable_user", "Enable a user", "User to enable", "Enable user", disabled, caption
    )


def sessions_frame(sessions: Sequence[BrowserSession]) -> pd.DataFrame:
    """One row per live browser session (never a secret or a hash). Shown with st.dataframe,
    which renders each cell as text: a user agent is data, never markup."""
    return pd.DataFrame(
        [
            {
                "user": s.user,
                "session": s.id,
                "signed in (UTC)": f"{s.created_at:%Y-%m-%d %H:%M}",
                "last seen (UTC)": f"{s.last_seen_at:%Y-%m-%d %H:%M}",
                "ends by (UTC)": f"{min(s.idle_expires_at, s.expires_at):%Y-%m-%d %H:%M}",
                "user agent": s.user_agent,
            }
            for s in sessions
        ],
        columns=[
            "user",
            "session",
            "signed in (UTC)",
            "last seen (UTC)",
            "ends by (UTC)",
            "user agent",
        ],
    )


def revoke_session_form(sessions: Sequence[BrowserSession]) -> str | None:
    """The id of the session to end once submitted."""
    by_id = {s.id: s for s in sessions}
    with st.form("admin_revoke_session"):
        picked = st.selectbox(
            "Session to end",
            list(by_id),
            index=None,
            format_func=lambda sid: f"{by_id[sid].user} · {sid} · {by_id[sid].user_agent[:60]}",
        )
        if st.form_submit_button("End session") and picked:
            return str(picked)
    return None
