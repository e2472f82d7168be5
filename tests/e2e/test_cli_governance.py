"""The governance CLI end to end, through `app.cli.main` and once through `python -m app.cli`,
on a real MLflow store and on both governance databases.
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

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-enough"
AUTHORS = ("alice", "bob", "carol")  # run authors of versions 1, 2, 3


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small real MLflow store: per database flavour one model with three authored versions."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("cli", artifact_location=(root / "art").as_uri())
    for model in ("iris-sqlite", "iris-postgresql"):
        client.create_registered_model(model)
        for index, author in enumerate(AUTHORS, start=1):
            run = client.create_run(exp, tags={"mlflow.user": author})
            client.log_metric(run.info.run_id, "accuracy", 0.90 + index / 100)
            client.log_param(run.info.run_id, "max_depth", str(index))
            client.set_terminated(run.info.run_id)
            source = (root / "art" / model / str(index)).as_uri()
            client.create_model_version(model, source=source, run_id=run.info.run_id)
        client.set_registered_model_alias(model, "champion", "1")
    return uri


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(
    empty_db_url: str,
    mlflow_store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    env = {
        "COUNTERSIGN_DB_URL": empty_db_url,
        "COUNTERSIGN_DATA_DIR": str(tmp_path),
        "MLFLOW_TRACKING_URI": mlflow_store,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("COUNTERSIGN_POLICY", raising=False)

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


def as_user(name: str, password: str = PASSWORD) -> dict[str, object]:
    return {"stdin": password + "\n"}


def test_the_cli_runs_the_whole_flow_and_refuses_every_forbidden_step(
    cli: Cli, empty_db_url: str, mlflow_store: str
) -> None:
    model = "iris-postgresql" if empty_db_url.startswith("postgresql") else "iris-sqlite"
    assert "db upgrade" in refused(cli("users", "list", "--json"))
    assert "upgraded" in ok(cli("db", "upgrade"))
    people = {
        "rita": ("requester", "approver"),
        "ann": ("approver",),
        "ben": ("approver",),
        "bob": ("approver",),  # authored the run of version 2
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

    create = ("request", "create", "--model", model, "--target", "champion")
    why = ("--justification", "better accuracy", "--password-stdin")
    assert "no model" in refused(cli(*create, "--version", "9", *why, "--as", "rita", **as_user("rita")))  # fmt: skip
    assert "no model" in refused(cli("request", "create", "--model", "nope", "--version", "1", "--target", "champion", *why, "--as", "rita", **as_user("rita")))  # fmt: skip
    created = json.loads(ok(cli(*create, "--version", "2", *why, "--as", "rita", "--json", **as_user("rita"))))  # fmt: skip
    rid = created["id"]
    assert (created["state"], created["model"], created["version"]) == ("pending", model, "2")

    def sign(verb: str, name: str, password: str = PASSWORD, *extra: str) -> tuple[int, str, str]:
        args = ("request", verb, rid, "--comment", "checked", "--as", name, "--password-stdin")
        return cli(*args, *extra, stdin=password + "\n")

    wrong_password = refused(sign("approve", "ann", "not-it"))
    assert refused(sign("approve", "nobody")) == wrong_password
    assert "invalid user name or password" in wrong_password
    assert "requester" in refused(sign("approve", "rita"))  # self-approval
    assert "author" in refused(sign("approve", "bob"))  # approval by the version's author
    refused(sign("approve", "vic"))  # wrong role
    assert "requester" in refused(cli("request", "cancel", rid, "--as", "ann", "--password-stdin", **as_user("ann")))  # fmt: skip
    assert cli("request", "wait", rid, "--timeout", "0.2", "--interval", "0.1")[0] == 2

    first = ok(sign("approve", "ann"))
    assert "1 of 2" in first
    repeat = ok(sign("approve", "ann"))
    assert "already recorded" in repeat
    second = json.loads(ok(sign("approve", "ben", PASSWORD, "--json")))
    assert second["state"] == "executed"

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)
    moved = client.get_model_version_by_alias(model, "champion")
    assert str(moved.version) == "2"
    assert any(rid in value for value in moved.tags.values())

    shown = json.loads(ok(cli("request", "show", rid, "--json")))
    assert (shown["id"], shown["state"], shown["model"]) == (rid, "executed", model)
    assert (shown["version"], shown["target"]) == ("2", "champion")
    assert [v["approver"] for v in shown["votes"]] == ["ann", "ben"]
    assert ok(cli("request", "wait", rid, "--timeout", "5")).startswith(
        f"request {rid} is executed"
    )
    listed_requests = json.loads(ok(cli("request", "list", "--state", "executed", "--json")))
    assert [r["id"] for r in listed_requests["requests"]] == [rid]
    assert "executed" in refused(cli("request", "cancel", rid, "--as", "rita", "--password-stdin", **as_user("rita")))  # fmt: skip
    assert "executed" in refused(sign("reject", "dee"))  # invalid transition

    other = json.loads(ok(cli(*create, "--version", "3", *why, "--as", "rita", "--json", **as_user("rita"))))  # fmt: skip
    ok(cli("request", "cancel", other["id"], "--as", "rita", "--password-stdin", **as_user("rita")))
    assert cli("request", "wait", other["id"], "--timeout", "5")[0] == 1

    verified = json.loads(ok(cli("audit", "verify", "--json")))
    assert verified["ok"] is True
    assert verified["count"] > 10
    assert json.loads(ok(cli("reconcile", "--json", "--model", model))) == {"findings": []}
    assert "ann" in ok(cli("users", "disable", "ann"))
    assert refused(sign("approve", "ann")) == wrong_password

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "audit", "verify"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("audit chain verified")
