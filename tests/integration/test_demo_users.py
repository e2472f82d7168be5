"""`seed-demo` creates the demo users once, in a real governance database, without passwords in
its output; the demo approvers can sign in with their demo passwords."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.bootstrap import build_governance
from app.demo_users import DEMO_USERS, seed_demo_users
from app.settings import Settings
from tests.e2e.identity_env import build_governance_db, cli


def test_demo_users_are_created_once_with_their_roles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = build_governance_db(tmp_path, accounts=())
    settings = Settings.from_env(env, tmp_path / "no-secrets.toml")
    seed_demo_users(settings)
    first = capsys.readouterr().out
    seed_demo_users(settings)
    second = capsys.readouterr().out
    assert "alice (requester)" in first
    assert second.strip() == "demo users exist: nothing to do"
    assert not any(account.password in first + second for account in DEMO_USERS)
    users = {
        u["name"]: u["roles"]
        for u in json.loads(cli(env, "users", "list", "--json").stdout)["users"]
    }
    assert users == {a.username: [a.role] for a in DEMO_USERS}
    facade = build_governance(settings)
    try:
        assert facade.authenticate("erin", "erin-demo-pass").roles == ("approver",)
    finally:
        facade.dispose()


def test_without_a_schema_the_demo_users_wait_for_db_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env(
        {"COUNTERSIGN_DATA_DIR": str(tmp_path), "COUNTERSIGN_DB_URL": f"sqlite:///{tmp_path}/g.db"},
        tmp_path / "no-secrets.toml",
    )
    seed_demo_users(settings)
    assert "db upgrade" in capsys.readouterr().err
