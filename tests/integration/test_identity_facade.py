"""Every privileged facade call is refused for a role without the permission, on a real database.

Hiding a page or a button is only a courtesy: these are the calls a crafted session or a direct
caller would make, and the service layer must refuse them. The registry is the in-memory fake
(this checks authorisation, not MLflow).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.bootstrap import build_governance
from app.settings import Settings
from governance.domain import ROLES, Permission, is_allowed
from governance.errors import GovernanceError, NotAllowed
from tests.e2e.identity_env import build_governance_db
from tests.unit.fakes import FakeRegistry

PASSWORD = "role-pass-123"

ACTIONS: dict[str, tuple[Permission, Callable[[Any, str], object]]] = {
    "create_user": (
        Permission.ADMIN_USERS,
        lambda f, actor: f.create_user(actor, f"new-{actor}", ["viewer"], "x"),
    ),
    "disable_user": (Permission.ADMIN_USERS, lambda f, actor: f.disable_user(actor, "nobody")),
    "reset_password": (
        Permission.ADMIN_USERS,
        lambda f, actor: f.reset_password(actor, "nobody", "long-enough-1"),
    ),
    "enable_user": (Permission.ADMIN_USERS, lambda f, actor: f.enable_user(actor, "nobody")),
    "set_roles": (
        Permission.ADMIN_USERS,
        lambda f, actor: f.set_roles(actor, "nobody", ["viewer"]),
    ),
    "list_users": (Permission.ADMIN_USERS, lambda f, actor: f.list_users(actor)),
    "request_promotion": (
        Permission.REQUEST,
        lambda f, actor: f.request_promotion(actor, "m", "1", "challenger", "why not"),
    ),
    "break_glass": (
        Permission.BREAK_GLASS,
        lambda f, actor: f.break_glass(
            actor, "m", "1", "champion", "incident 42", password=PASSWORD
        ),
    ),
    "reconcile": (Permission.RECONCILE, lambda f, actor: f.reconcile(actor)),
    "verify_audit": (Permission.READ_AUDIT, lambda f, actor: f.verify_audit(actor)),
}


@pytest.fixture(scope="module")
def facade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder: Path = tmp_path_factory.mktemp("identity-facade")
    env = build_governance_db(folder, accounts=[(f"u-{r}", r, PASSWORD) for r in ROLES])
    registry = FakeRegistry()
    registry.add("m", "1", author="someone-else", metrics={"accuracy": 0.9})
    built = build_governance(Settings.from_env(env, folder / "none.toml"), registry=registry)
    yield built
    built.dispose()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_the_facade_refuses_an_action_to_a_role_without_its_permission(
    facade: Any, role: str, action: str
) -> None:
    permission, call = ACTIONS[action]
    actor = f"u-{role}"
    if is_allowed((role,), permission):
        try:
            call(facade, actor)
        except NotAllowed as exc:  # pragma: no cover - the failure message names the action
            pytest.fail(f"{role} was refused {action}: {exc}")
        except GovernanceError:
            pass  # allowed, then refused for another reason (unknown user, short password...)
    else:
        with pytest.raises(NotAllowed):
            call(facade, actor)
