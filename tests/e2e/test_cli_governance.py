"""The governance CLI end to end, through `app.cli.main` and once through `python -m app.cli`,
on a private copy of the real demo MLflow store and on both governance databases.

Demo store: `tumor-classifier` v1 by alice, v2 by bob (alias champion), v3 by carol.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cli import main
from app.settings import Settings
from tests.e2e.gov_env import workflow_policy

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-enough"
MODEL = "tumor-classifier"


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def mlflow_store(demo_store_copy: Callable[[], Settings]) -> Settings:
    return demo_store_copy()


@pytest.fixture
def cli(
    empty_db_url: str,
    mlflow_store: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    monkeypatch.setenv("COUNTERSIGN_DB_URL", empty_db_url)
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(mlflow_store.data_dir))
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "COUNTERSIGN_POLICY"):
        monkeypatch.delenv(key, raising=False)

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def refused(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_the_cli_runs_the_whole_flow_and_refuses_every_forbidden_step(
    cli: Cli, mlflow_store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workflow, not the drift gate (tested below on the shipped policy).
    monkeypatch.setenv("COUNTERSIGN_POLICY", str(workflow_policy(mlflow_store.data_dir)))
    model = MODEL
    assert "db upgrade" in refused(cli("users", "list", "--json"))
    assert "upgraded" in ok(cli("db", "upgrade"))
    people = {
        "rita": ("requester", "approver"),
        "ann": ("approver",),
        "ben": ("approver",),
        "carol": ("approver",),  # authored the run of version 3
        "vic": ("viewer",),
        "dee": ("approver",),
    }
    for name, roles in people.items():
        flags = [arg for role in roles for arg in ("--role", role)]
        ok(cli("users", "add", name, *flags, "--password-stdin", stdin=PASSWORD + "\n"))
    assert "exists" in refused(
        cli("users", "add", "ann", "--role", "approver", "--password-stdin", stdin="x" * 12 + "\n")
    )
    listed = json.loads(ok(cli("users", "list", "--json")))
    assert {u["name"]: tuple(u["roles"]) for u in listed["users"]} == people
    assert "password" not in json.dumps(listed).replace("password_", "")

    def as_rita(*args: str) -> tuple[int, str, str]:
        return cli(*args, "--as", "rita", "--password-stdin", stdin=PASSWORD + "\n")

    def create(version: str, name: str = model, target: str = "champion") -> tuple[int, str, str]:
        return as_rita(
            *("request", "create", "--model", name, "--version", version),
            *("--target", target, "--justification", "better accuracy", "--json"),
        )

    assert "no model" in refused(create("9"))
    assert "no model" in refused(create("1", "nope"))
    # A target is a stage, a target the policy names, or a valid MLflow alias name; nothing else.
    for bad in ("<img src=x onerror=alert(1)>", "[x](javascript:alert(1))", "latest", "v2"):
        assert "invalid target" in refused(create("3", target=bad))
    rollback_bad = ("request", "rollback", "--model", model, "--target", "<!here>")
    assert "invalid target" in refused(as_rita(*rollback_bad, "--justification", "undo"))
    created = json.loads(ok(create("3")))
    rid = created["id"]
    assert (created["state"], created["model"], created["version"]) == ("pending", model, "3")

    def sign(verb: str, name: str, password: str = PASSWORD, *extra: str) -> tuple[int, str, str]:
        args = ("request", verb, rid, "--comment", "checked", "--as", name, "--password-stdin")
        return cli(*args, *extra, stdin=password + "\n")

    wrong_password = refused(sign("approve", "ann", "not-it"))
    assert refused(sign("approve", "nobody")) == wrong_password
    assert "invalid user name or password" in wrong_password
    assert "requester" in refused(sign("approve", "rita"))  # self-approval
    assert "author" in refused(sign("approve", "carol"))  # approval by the version's author
    refused(sign("approve", "vic"))  # wrong role
    cancel = ("request", "cancel", rid, "--password-stdin")
    assert "requester" in refused(cli(*cancel, "--as", "ann", stdin=PASSWORD + "\n"))
    assert cli("request", "wait", rid, "--timeout", "0.2", "--interval", "0.1")[0] == 2

    first = ok(sign("approve", "ann"))
    assert "1 of 2" in first
    repeat = ok(sign("approve", "ann"))
    assert "already recorded" in repeat
    second = json.loads(ok(sign("approve", "ben", PASSWORD, "--json")))
    assert second["state"] == "executed"

    from mlflow import MlflowClient

    uri = mlflow_store.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    moved = client.get_model_version_by_alias(model, "champion")
    assert str(moved.version) == "3"
    assert any(rid in value for value in moved.tags.values())

    shown = json.loads(ok(cli("request", "show", rid, "--json")))
    assert (shown["id"], shown["state"], shown["model"]) == (rid, "executed", model)
    assert (shown["version"], shown["target"]) == ("3", "champion")
    assert [v["approver"] for v in shown["votes"]] == ["ann", "ben"]
    assert ok(cli("request", "wait", rid, "--timeout", "5")).startswith(
        f"request {rid} is executed"
    )
    listed_requests = json.loads(ok(cli("request", "list", "--state", "executed", "--json")))
    assert [r["id"] for r in listed_requests["requests"]] == [rid]
    assert "executed" in refused(as_rita("request", "cancel", rid))
    assert "executed" in refused(sign("reject", "dee"))  # invalid transition

    other = json.loads(ok(create("1", target="challenger")))
    ok(as_rita("request", "cancel", other["id"]))
    assert cli("request", "wait", other["id"], "--timeout", "5")[0] == 1

    assert "unchanged; now executed" in ok(cli("request", "execute", rid))  # a retry is harmless
    rollback = json.loads(
        ok(as_rita(*("request", "rollback", "--model", model, "--target", "champion"),
                   *("--justification", "v3 misbehaves", "--json")))
    )  # fmt: skip
    assert (rollback["kind"], rollback["version"]) == ("rollback", "2")
    restored = json.loads(ok(cli(*("request", "approve", rollback["id"], "--comment", "ok"),
                                 *("--as", "ann", "--password-stdin", "--json"),
                                 stdin=PASSWORD + "\n")))  # fmt: skip
    assert restored["state"] == "executed"
    assert str(client.get_model_version_by_alias(model, "champion").version) == "2"

    verified = json.loads(ok(cli("audit", "verify", "--json")))
    assert verified["ok"] is True
    assert verified["count"] > 10
    # The demo store's challenger alias was set outside the ledger: reported, and recorded once.
    findings = json.loads(ok(cli("reconcile", "--json", "--model", model)))["findings"]
    assert [(f["target"], f["newly_recorded"]) for f in findings] == [("challenger", True)]
    findings = json.loads(ok(cli("reconcile", "--json", "--model", model)))["findings"]
    assert [(f["target"], f["newly_recorded"]) for f in findings] == [("challenger", False)]
    assert "ann" in ok(cli("users", "disable", "ann"))
    assert refused(sign("approve", "ann")) == wrong_password

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "audit", "verify"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("audit chain verified")


def test_the_app_and_the_cli_capture_the_same_drift_evidence_and_the_drift_gate_applies(
    cli: Cli, mlflow_store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A request made through the app's facade is signed through the CLI (no stale evidence),
    both capture the demo store's drift and importance summaries with one evidence hash, and the
    champion gate `max_drift_share: 0.5` refuses the demo's drifted batch."""
    import app.deps as deps

    ok(cli("db", "upgrade"))
    for name, role in (("rita", "requester"), ("ann", "approver")):
        ok(cli("users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD))
    deps.clear_caches()
    try:
        app_facade = deps.get_governance()
        made = app_facade.request_promotion("rita", MODEL, "1", "challenger", "from the app")
        preview = deps.evidence_preview("rita", MODEL, "1", "challenger")
    finally:
        deps.clear_caches()
    capsys.readouterr()  # the app's caches outside a server log a warning of their own
    shown = json.loads(ok(cli("request", "show", made.id, "--json")))
    assert shown["evidence_hash"] == made.evidence_hash == preview.hash
    assert preview.data["drift"]["share_drifted"] > 0.5
    assert preview.data["importance"]["top"]
    signed = json.loads(
        ok(
            cli(
                "request", "approve", made.id, "--comment", "checked", "--as", "ann",
                "--password-stdin", "--json", stdin=PASSWORD,
            )
        )
    )  # fmt: skip
    assert signed["state"] == "executed"
    from_cli = json.loads(
        ok(
            cli(
                "request", "create", "--model", MODEL, "--version", "1", "--target", "t-cli",
                "--justification", "from the CLI", "--as", "rita", "--password-stdin", "--json",
                stdin=PASSWORD,
            )
        )
    )  # fmt: skip
    deps.clear_caches()
    try:
        assert deps.evidence_preview("rita", MODEL, "1", "t-cli").hash == from_cli["evidence_hash"]
    finally:
        deps.clear_caches()
    # The app's caches, used here outside a Streamlit server, log a warning of their own; what
    # the next command prints must be the command's alone.
    capsys.readouterr()
    gate = refused(
        cli(
            "request", "create", "--model", MODEL, "--version", "3", "--target", "champion",
            "--justification", "drifted", "--as", "rita", "--password-stdin", stdin=PASSWORD,
        )
    )  # fmt: skip
    assert "policy gates failed: drift share <= 0.5" in gate, gate
