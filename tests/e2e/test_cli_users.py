"""`users roles` and `users enable` through `app.cli.main`, on SQLite and PostgreSQL.

The MLflow store is an empty SQLite file: user administration never touches the registry.
Every change and every refusal is read back from the audit log.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.bootstrap import build_governance
from app.cli import main
from app.settings import Settings
from governance.domain import CLI_OPERATOR, AuditAction
from tests.e2e.cli_results import ok, refused

PASSWORD = "s3cret-enough"
LAST_ADMIN = "error: 'root' is the last active admin: give another user the admin role first"

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(
    empty_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    """The CLI over a fresh governance database holding root (admin) and ann (approver)."""
    monkeypatch.setenv("COUNTERSIGN_DB_URL", empty_db_url)
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    for key in ("MLFLOW_REGISTRY_URI", "COUNTERSIGN_POLICY"):
        monkeypatch.delenv(key, raising=False)

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    ok(run("db", "upgrade"))
    for name, role in (("root", "admin"), ("ann", "approver")):
        ok(run("users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n"))
    return run


def users(cli: Cli) -> dict[str, tuple[tuple[str, ...], bool]]:
    listed = json.loads(ok(cli("users", "list", "--json")))["users"]
    return {u["name"]: (tuple(u["roles"]), u["disabled"]) for u in listed}


def last_event(name: str) -> tuple[str, str, dict[str, object]]:
    """(action, actor, payload) of the newest audit entry about user `name`."""
    facade = build_governance(Settings.from_env())
    try:
        with facade.store.unit_of_work(read_only=True) as uow:
            record = uow.audit.for_object("user", name)[-1]
    finally:
        facade.dispose()
    return record.action, record.actor, json.loads(record.payload)


def test_the_operator_changes_roles_and_enables_a_user_and_each_change_is_audited(
    cli: Cli,
) -> None:
    out = ok(cli("users", "roles", "ann", "--role", "approver", "--role", "auditor"))
    assert out == "user ann has role(s) approver, auditor\n"
    assert users(cli)["ann"] == (("approver", "auditor"), False)
    assert last_event("ann") == (
        AuditAction.USER_ROLES_CHANGED,
        CLI_OPERATOR,
        {"before": ["approver"], "after": ["approver", "auditor"]},
    )

    ok(cli("users", "disable", "ann"))
    assert ok(cli("users", "enable", "ann")) == "user ann is enabled\n"
    assert users(cli)["ann"] == (("approver", "auditor"), False)
    assert last_event("ann") == (AuditAction.USER_ENABLED, CLI_OPERATOR, {})


@pytest.mark.parametrize(
    ("args", "message", "target"),
    [
        (("users", "roles", "root", "--role", "viewer"), LAST_ADMIN, "root"),
        (("users", "disable", "root"), LAST_ADMIN, "root"),
        (
            ("users", "roles", "ann", "--role", "wizard"),
            "error: unknown role 'wizard': expected one of viewer, requester, approver, admin, "
            "auditor",
            "ann",
        ),
        (
            ("users", "roles", "nobody", "--role", "viewer"),
            "error: no user named 'nobody'",
            "nobody",
        ),
        (("users", "enable", "nobody"), "error: no user named 'nobody'", "nobody"),
    ],
    ids=[
        "demote-last-admin",
        "disable-last-admin",
        "unknown-role",
        "roles-unknown",
        "enable-unknown",
    ],
)
def test_a_refused_user_change_is_one_line_and_an_audited_refusal(
    cli: Cli, args: tuple[str, ...], message: str, target: str
) -> None:
    before = users(cli)
    assert refused(cli(*args)) == message
    assert users(cli) == before
    action, actor, payload = last_event(target)
    assert (action, actor, payload["attempted"]) == (
        AuditAction.ACTION_REFUSED,
        CLI_OPERATOR,
        {"roles": "set_roles", "disable": "disable_user", "enable": "enable_user"}[args[1]],
    )


def test_a_second_admin_lets_the_operator_demote_the_first(cli: Cli) -> None:
    ok(cli("users", "roles", "ann", "--role", "approver", "--role", "admin"))
    assert ok(cli("users", "roles", "root", "--role", "auditor")) == (
        "user root has role(s) auditor\n"
    )
    assert refused(cli("users", "disable", "ann")) == LAST_ADMIN.replace("root", "ann")
    assert last_event("root")[:2] == (AuditAction.USER_ROLES_CHANGED, CLI_OPERATOR)
