"""Password resets, password changes and break-glass re-authentication through `app.cli.main`.

User administration runs on SQLite and PostgreSQL over an empty MLflow store; break-glass runs
once, on SQLite, over a private copy of the demo MLflow store (`tumor-classifier` v2 holds
champion). Every refusal is one line on stderr and moves nothing.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.bootstrap import build_governance
from app.cli import main
from app.settings import Settings
from governance.domain import AuditAction
from tests.e2e.cli_results import ok, refused

PASSWORD = "s3cret-enough"
SET_BY_OPERATOR = "set-by-the-operator"
CHOSEN = "ann-chose-this-one"

Cli = Callable[..., tuple[int, str, str]]


def _runner(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _environment(monkeypatch: pytest.MonkeyPatch, db_url: str, data_dir: Path) -> None:
    monkeypatch.setenv("COUNTERSIGN_DB_URL", db_url)
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(data_dir))
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "COUNTERSIGN_POLICY"):
        monkeypatch.delenv(key, raising=False)


def _people(cli: Cli) -> None:
    ok(cli("db", "upgrade"))
    for name, role in (("root", "admin"), ("ann", "approver")):
        ok(cli("users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n"))


def _actions(name: str) -> list[str]:
    facade = build_governance(Settings.from_env())
    try:
        with facade.store.unit_of_work(read_only=True) as uow:
            return [r.action for r in uow.audit.for_object("user", name)]
    finally:
        facade.dispose()


def test_an_operator_reset_forces_a_new_password_before_anything_else(
    empty_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _environment(monkeypatch, empty_db_url, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    cli = _runner(monkeypatch, capsys)
    _people(cli)
    out = ok(cli("users", "reset-password", "ann", "--password-stdin", stdin=SET_BY_OPERATOR))
    assert out == "password of ann reset: they must choose a new one at their next sign-in\n"
    as_ann = ("request", "list", "--json")  # a command that needs no person: still works
    ok(cli(*as_ann))
    approve = ("request", "approve", "nope", "--comment", "c", "--as", "ann", "--password-stdin")
    assert refused(cli(*approve, stdin=SET_BY_OPERATOR + "\n")) == (
        "error: an administrator set your password: choose a new one before you continue"
    )
    change = ("users", "change-password", "ann", "--password-stdin")
    assert "invalid user name or password" in refused(cli(*change, stdin=f"wrong\n{CHOSEN}\n"))
    assert "different" in refused(cli(*change, stdin=f"{SET_BY_OPERATOR}\n{SET_BY_OPERATOR}\n"))
    assert ok(cli(*change, stdin=f"{SET_BY_OPERATOR}\n{CHOSEN}\n")) == "password of ann changed\n"
    # The chosen password now identifies ann (the request itself does not exist).
    assert refused(cli(*approve, stdin=CHOSEN + "\n")) == "error: no promotion request nope"
    actions = _actions("ann")
    assert actions[-2:] == [AuditAction.ACTION_REFUSED, AuditAction.PASSWORD_CHANGED]
    assert AuditAction.PASSWORD_RESET in actions


def test_a_database_password_never_appears_in_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _environment(monkeypatch, "postgresql+psycopg://u:s3cret@127.0.0.1:1/nowhere", tmp_path)
    cli = _runner(monkeypatch, capsys)
    message = refused(cli("users", "list"))
    assert "s3cret" not in message
    assert "governance database" in message


@pytest.mark.slow
def test_break_glass_from_the_cli_needs_the_admins_password(
    demo_store_copy: Callable[[], Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = demo_store_copy()
    _environment(monkeypatch, f"sqlite:///{tmp_path / 'governance.db'}", store.data_dir)
    cli = _runner(monkeypatch, capsys)
    _people(cli)
    args = (
        *("request", "break-glass", "--model", "tumor-classifier", "--version", "3"),
        *("--target", "champion", "--justification", "incident 7", "--as", "root"),
        "--password-stdin",
    )
    assert refused(cli(*args, stdin="not-the-password\n")) == (
        "error: invalid user name or password"
    )
    assert "may not break glass" in refused(
        cli(*args[:-3], "--as", "ann", "--password-stdin", stdin=PASSWORD + "\n")
    )
    out = ok(cli(*args, stdin=PASSWORD + "\n"))
    assert out.startswith("BREAK-GLASS request ")
    assert "now executed" in out
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri)
    assert str(client.get_model_version_by_alias("tumor-classifier", "champion").version) == "3"
