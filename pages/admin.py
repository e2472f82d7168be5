"""Admin: users and roles, add, change roles, disable (never delete) and enable a user, reset a
password; the signed-in browsers, each of which can be ended; the active policy.

Every change is one facade call with the signed-in admin as the actor; the service checks the
role again, refuses what would leave no active admin, and writes the audit event in the same
transaction. The forms live in app/ui/admin_forms.py.
"""

import json
from collections.abc import Callable

import streamlit as st

import app.deps as deps
from app.ui import admin_forms as forms, errors, guard
from app.ui.text import md_code
from governance.domain import ROLES, Permission

FLASH = "admin_flash"
esc = guard.escape_markdown


def apply(change: Callable[[], object], message: str) -> None:
    """Make one change; on success show `message` after a rerun, so the users table above
    reflects it; a refusal shows its one-line reason under the form."""
    with errors.guard(stop=False):
        change()
        st.session_state[FLASH] = message
        st.rerun()


def reset_message(actor: str, name: str) -> str:
    if name == actor:
        return "Your password is reset."
    return (
        f"Password of {esc(name)} reset and lockout lifted: they must choose a new one at their "
        "next sign-in, and they are signed out everywhere."
    )


def policy_section() -> None:
    st.subheader("Active policy")
    policy = deps.get_governance().policy
    st.markdown(f"Policy file: {md_code(policy.name)}  \nSHA-256: {md_code(policy.hash)}")
    st.code(json.dumps(policy.document, indent=2, sort_keys=True, default=str), language="json")


def main() -> None:
    st.title("Admin")
    if FLASH in st.session_state:
        st.success(st.session_state.pop(FLASH))
    user = guard.current_user()
    assert user is not None  # the guard below this module's definitions has run
    actor = user.username
    gov = deps.get_governance()
    users = list(gov.list_users(actor))
    st.subheader("Users and roles")
    st.dataframe(forms.users_frame(users), hide_index=True, width="stretch")
    names = [u.name for u in users]
    active = [u.name for u in users if not u.disabled and u.name != actor]
    disabled = [u.name for u in users if u.disabled]
    choices = [*ROLES, *sorted(gov.policy.roles_named() - set(ROLES))]
    left, right = st.columns(2)
    with left:
        if new := forms.add_user_form(choices):
            apply(
                lambda: gov.create_user(actor, new.name, new.roles, new.password, new.display_name),
                f"User {esc(new.name)} added: they choose their own password at their first "
                "sign-in, with the one you set.",
            )
        if picked := forms.roles_form(users, choices):
            name, roles = picked
            apply(
                lambda: gov.set_roles(actor, name, roles),
                f"Roles of {esc(name)} set to {esc(', '.join(roles))}.",
            )
    with right:
        caption = "Users are never deleted: the audit log refers to them."
        args = ("admin_disable_user", "Disable a user", "User to disable", "Disable user")
        if name := forms.pick_user_form(*args, active, caption):
            apply(lambda: gov.disable_user(actor, name), f"User {esc(name)} disabled.")
        if name := forms.enable_form(disabled):
            apply(lambda: gov.enable_user(actor, name), f"User {esc(name)} enabled.")
        if reset := forms.reset_form(names):
            apply(
                lambda: gov.reset_password(actor, *reset),
                reset_message(actor, reset[0]),
            )
    sessions_section(actor)
    policy_section()


def sessions_section(actor: str) -> None:
    st.subheader("Signed-in browsers")
    st.caption("Ending a session signs that browser out at its next click, in every tab.")
    gov = deps.get_governance()
    sessions = gov.list_sessions(actor)
    if not sessions:
        st.caption("No browser is signed in with a password right now.")
        return
    st.dataframe(forms.sessions_frame(sessions), hide_index=True, width="stretch")
    if picked := forms.revoke_session_form(sessions):
        apply(lambda: gov.end_session(actor, picked), f"Session {esc(picked)} ended.")


guard.require(Permission.ADMIN_USERS)
errors.run_page(main)
