"""User administration on real SQLite and PostgreSQL: the last-admin rule holds under a race.

The rule reads every user, so it must read them under the write lock: on PostgreSQL a check
made before the lock would count an admin that a concurrent transaction is demoting.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.bootstrap import build_governance
from app.facade import GovernanceFacade
from app.settings import Settings
from governance.db import make_engine, upgrade
from governance.domain import CLI_OPERATOR, AuditAction
from governance.errors import AuthenticationFailed, NotAllowed
from tests.integration.locks import race_a_user_change
from tests.unit.fakes import PASSWORD, FakeHasher, FakeRegistry


@pytest.fixture
def facade(empty_db_url: str, tmp_path: Path) -> Iterator[GovernanceFacade]:
    engine = make_engine(empty_db_url)
    upgrade(engine)
    engine.dispose()
    env = {"COUNTERSIGN_DB_URL": empty_db_url, "COUNTERSIGN_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env(env, secrets_path=tmp_path / "none.toml")
    built = build_governance(settings, registry=FakeRegistry(), hasher=FakeHasher())
    for name in ("ada", "bea"):
        built.create_user(CLI_OPERATOR, name, ["admin"], PASSWORD)
    yield built
    built.dispose()


def test_a_demotion_racing_another_one_leaves_an_active_admin(
    facade: GovernanceFacade, empty_db_url: str
) -> None:
    # Another writer, mid-transaction, is demoting bea when the operator demotes ada.
    refused = race_a_user_change(
        facade, empty_db_url, "bea", {"roles": ("viewer",)},
        lambda: facade.set_roles(CLI_OPERATOR, "ada", ["viewer"]),
    )  # fmt: skip
    assert isinstance(refused, NotAllowed), refused
    assert "'ada' is the last active admin" in str(refused)
    users = {u.name: u.roles for u in facade.list_users(CLI_OPERATOR)}
    assert users == {"ada": ("admin",), "bea": ("viewer",)}
    with facade.store.unit_of_work(read_only=True) as uow:
        refusal = uow.audit.for_object("user", "ada")[-1]
    assert (refusal.action, refusal.actor) == (AuditAction.ACTION_REFUSED, CLI_OPERATOR)


def test_concurrent_wrong_passwords_each_count_towards_the_lockout(
    facade: GovernanceFacade, empty_db_url: str
) -> None:
    """A failed sign-in that races another one still counts: the counter is read under the
    write lock, so the fifth failure locks the account however the attempts interleave."""
    # Another attempt, mid-transaction, has just recorded the fourth failure.
    refused = race_a_user_change(
        facade, empty_db_url, "ada", {"failed_logins": 4},
        lambda: facade.authenticate("ada", "not-the-password"),
    )  # fmt: skip
    assert isinstance(refused, AuthenticationFailed), refused
    with facade.store.unit_of_work(read_only=True) as uow:
        ada = uow.users.find("ada")
        actions = [e.action for e in uow.audit.for_object("user", "ada")]
    assert ada is not None
    assert ada.locked_until is not None
    assert AuditAction.USER_LOCKED in actions
