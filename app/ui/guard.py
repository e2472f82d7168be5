"""Page guards. Every page calls `require(...)` on its first line and gets the signed-in user.

The gate in app/main.py signs people in and hides pages a role may not use; a page opened by
URL (or run on its own) still checks here and says which role it needs. The service layer checks
again on every action: hiding a button is a courtesy, not the control.
"""

from __future__ import annotations

import streamlit as st

from app.entities import SignedInUser
from app.ui.text import md_escape
from governance.domain import AUTHORISATION_MATRIX, ROLES, Permission, is_allowed

SESSION_KEY = "countersign_user"


def escape_markdown(text: str) -> str:
    """User text shown through Markdown-rendering elements, inert (see `app.ui.text`)."""
    return md_escape(text)


def current_user() -> SignedInUser | None:
    """The signed-in user of this browser session, or None."""
    user = st.session_state.get(SESSION_KEY)
    return user if isinstance(user, SignedInUser) else None


def roles_for(permission: Permission) -> tuple[str, ...]:
    """The roles that grant a permission, in a stable order for messages."""
    return tuple(sorted(AUTHORISATION_MATRIX[permission]))


def needed_roles_text(permission: Permission) -> str:
    """'admin' or 'admin or auditor': how a refusal names the roles a page needs."""
    return " or ".join(roles_for(permission))


def policy_signer_roles(roles: tuple[str, ...]) -> frozenset[str]:
    """The policy's approver roles, read only for a user holding a role that is not built in."""
    if not set(roles) - set(ROLES):
        return frozenset()
    import app.deps as deps

    return deps.policy_signer_roles()


def may(user: SignedInUser | None, permission: Permission) -> bool:
    """Whether the user's roles grant the permission (for showing or hiding controls)."""
    return user is not None and is_allowed(user.roles, permission, policy_signer_roles(user.roles))


def require(permission: Permission = Permission.VIEW) -> SignedInUser:
    """Stop the page unless someone is signed in with a role that grants the permission.

    Returns:
        The signed-in user, for pages to pass on as the actor of facade calls.
    """
    user = current_user()
    if user is None:
        st.info("Please sign in to use Countersign.")
        st.stop()
    if not is_allowed(user.roles, permission, policy_signer_roles(user.roles)):
        st.error(f"You need the {md_escape(needed_roles_text(permission))} role to open this page.")
        st.stop()
    store_notice()
    return user


def store_notice() -> None:
    """The one message about the MLflow store every page shows first: a SQL store at another
    schema revision (which Countersign will not migrate), with both revisions and the ways on."""
    import app.deps as deps

    try:
        notice = deps.store_notice()
    except deps.USER_ERRORS:  # e.g. a bad setting: the page itself reports it
        notice = None
    if notice:
        st.warning(notice, icon=":material/database:")
