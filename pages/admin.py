"""Admin: users and roles, add, disable (never delete) and reset a password; the active policy.

Every change is one facade call with the signed-in admin as the actor; the service checks the
role again and writes the audit event in the same transaction.
"""

import json

import pandas as pd
import streamlit as st

import app.deps as deps
from app.ui import errors, guard
from governance.domain import ROLES, Permission

FLASH = "admin_flash"


def done(message: str) -> None:
    """Show the outcome after a rerun, so the users table above reflects the change."""
    st.session_state[FLASH] = message
    st.rerun()


def users_frame(users: list) -> pd.DataFrame:
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


def add_user_form(actor: str, role_choices: list[str]) -> None:
    with st.form("admin_add_user", clear_on_submit=True):
        st.subheader("Add a user")
        name = st.text_input("User name")
        display = st.text_input("Full name")
        roles = st.multiselect("Roles", role_choices, default=["viewer"])
        password = st.text_input("Initial password", type="password")
        if st.form_submit_button("Add user"):
            with errors.guard(stop=False):
                deps.get_governance().create_user(actor, name.strip(), roles, password, display)
                done(f"User {guard.escape_markdown(name.strip())} added.")


def disable_form(actor: str, names: list[str]) -> None:
    with st.form("admin_disable_user"):
        st.subheader("Disable a user")
        st.caption("Users are never deleted: the audit log refers to them.")
        name = st.selectbox("User to disable", names, index=None)
        if st.form_submit_button("Disable user") and name:
            with errors.guard(stop=False):
                deps.get_governance().disable_user(actor, name)
                done(f"User {guard.escape_markdown(name)} disabled.")


def reset_form(actor: str, names: list[str]) -> None:
    with st.form("admin_reset_password", clear_on_submit=True):
        st.subheader("Reset a password")
        name = st.selectbox("User", names, index=None)
        password = st.text_input("New password", type="password")
        if st.form_submit_button("Reset password") and name:
            with errors.guard(stop=False):
                deps.get_governance().reset_password(actor, name, password)
                done(f"Password of {guard.escape_markdown(name)} reset; lockout lifted.")


def policy_section() -> None:
    st.subheader("Active policy")
    policy = deps.get_governance().policy
    st.markdown(f"Source: `{policy.source}`  \nSHA-256: `{policy.hash}`")
    st.code(json.dumps(policy.document, indent=2, sort_keys=True, default=str), language="json")


def main() -> None:
    st.title("Admin")
    if FLASH in st.session_state:
        st.success(st.session_state.pop(FLASH))
    user = guard.current_user()
    assert user is not None  # the guard below this module's definitions has run
    governance = deps.get_governance()
    users = list(governance.list_users(user.username))
    st.subheader("Users and roles")
    st.dataframe(users_frame(users), hide_index=True, width="stretch")
    active = [u.name for u in users if not u.disabled and u.name != user.username]
    extra = sorted(governance.policy.roles_named() - set(ROLES))
    left, right = st.columns(2)
    with left:
        add_user_form(user.username, [*ROLES, *extra])
    with right:
        disable_form(user.username, active)
        reset_form(user.username, [u.name for u in users])
    policy_section()


guard.require(Permission.ADMIN_USERS)
errors.run_page(main)
