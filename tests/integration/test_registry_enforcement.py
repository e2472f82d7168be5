"""The ledger as MLflow's desired state, on real components only.

Started once for the module, on 127.0.0.1: a real `mlflow server` on a fresh PostgreSQL
database, allowed to deliver webhooks to a loopback http receiver
(`MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https`, `MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true`), a fresh
PostgreSQL governance database migrated by the CLI, the receiver as
`python -m app.cli webhooks receive`, and the webhook registered by
`python -m app.cli webhooks register`. A data scientist then moves aliases with MlflowClient.
Every wait polls until a state is reached (at most 10 s, the issue's bound); nothing asserts on
speed (that is `python -m bench.enforcement`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.receiver import signature as sig
from app.settings import Settings
from tests.browser_support import ROOT, free_port, wait_http
from tests.integration.test_scale_out import databases, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MODEL = "ledger-model"
SECRET = "registry-enforcement-secret"  # a throwaway secret for a throwaway server
PASSWORD = "enforcement-pass-123"
POLICY = """version: 1
defaults: {quorum: 1, approver_roles: [approver], separation_of_duties: false}
targets:
  champion: {out_of_band: revert}
  challenger: {out_of_band: flag}
"""
WITHIN_S = 10.0


def eventually(check: Callable[[], Any], what: str, within_s: float = WITHIN_S) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `within_s`."""
    deadline = time.monotonic() + within_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {within_s:g} s: {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from cryptography.fernet import Fernet

    folder = tmp_path_factory.mktemp("enforcement")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "COUNTER"))}
    processes: list[subprocess.Popen[bytes]] = []
    db_iter = databases(pg_url, 2)
    governance_url, mlflow_db_url = next(db_iter)
    try:
        mlflow_port, receiver_port = free_port(), free_port()
        mlflow_env = {
            **base_env,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # A loopback http receiver: MLflow refuses both by default (production uses https).
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            # MLflow stores webhook secrets encrypted; without a fixed key each server process
            # draws its own and cannot read secrets another process stored.
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            # MLflow caches the webhook list per event (60 s by default): a short cache lets the
            # registration made after start-up take effect at once.
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        }
        mlflow_log = folder / "mlflow.log"
        processes.append(
            start(
                [
                    sys.executable, "-m", "mlflow", "server",
                    "--backend-store-uri", mlflow_db_url,
                    "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"),
                    "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1",
                ],
                mlflow_env,
                mlflow_log,
            )
        )  # fmt: skip
        tracking = f"http://127.0.0.1:{mlflow_port}"
        policy = folder / "policy.yaml"
        policy.write_text(POLICY, encoding="utf-8")
        env = {
            **base_env,
            "PYTHONPATH": str(ROOT),
            "MLFLOW_TRACKING_URI": tracking,
            "COUNTERSIGN_DB_URL": governance_url,
            "COUNTERSIGN_POLICY": str(policy),
            "COUNTERSIGN_DATA_DIR": str(folder / "data"),
            "COUNTERSIGN_MLFLOW_WEBHOOK_SECRET": SECRET,
        }

        def cli(*argv: str) -> str:
            done = subprocess.run(
                [sys.executable, "-m", "app.cli", *argv],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            return done.stdout

        cli("db", "upgrade")
        receiver_log = folder / "receiver.log"
        receiver = start(
            [sys.executable, "-m", "app.cli", "webhooks", "receive",
             "--host", "127.0.0.1", "--port", str(receiver_port)],
            env,
            receiver_log,
        )  # fmt: skip
        processes.append(receiver)
        receiver_url = f"http://127.0.0.1:{receiver_port}"
        wait_http(f"{tracking}/health", processes[0], mlflow_log, timeout_s=240)
        wait_http(f"{receiver_url}/healthz", receiver, receiver_log, timeout_s=120)
        hook_id = cli("webhooks", "register", "--mlflow", tracking, "--receiver", receiver_url)
        settings = Settings.from_env(
            {k: v for k, v in env.items() if k != "PYTHONPATH"}, secrets_path=folder / "none.toml"
        )
        yield {
            "cli": cli,
            "env": env,
            "settings": settings,
            "tracking": tracking,
            "receiver": receiver_url,
            "hook_id": hook_id.split()[0],
            "logs": (mlflow_log, receiver_log),
        }
    finally:
        stop(processes)
        next(db_iter, None)


@pytest.fixture(scope="module")
def world(stack: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The model with four versions, the people, and champion and challenger governed to v1."""
    from mlflow import MlflowClient

    from app.bootstrap import build_governance
    from governance.domain import CLI_OPERATOR

    client = MlflowClient(tracking_uri=stack["tracking"], registry_uri=stack["tracking"])
    experiment = client.create_experiment("enforcement")
    run = client.create_run(experiment, tags={"mlflow.user": "dora"})
    client.log_metric(run.info.run_id, "accuracy", 0.9)
    client.set_terminated(run.info.run_id)
    client.create_registered_model(MODEL)
    for _ in range(4):
        client.create_model_version(MODEL, f"{run.info.artifact_uri}/model", run.info.run_id)
    facade = build_governance(stack["settings"])
    facade.create_user(CLI_OPERATOR, "rita", ["requester"], PASSWORD)
    facade.create_user(CLI_OPERATOR, "ann", ["approver"], PASSWORD)
    world = {"client": client, "facade": facade, "tracking": stack["tracking"]}
    for target in ("champion", "challenger"):
        govern(world, "1", target)
    try:
        yield world
    finally:
        facade.dispose()


def govern(world: dict[str, Any], version: str, target: str) -> str:
    facade = world["facade"]
    request = facade.request_promotion("rita", MODEL, version, target, "governed move")
    result = facade.sign_off(
        "ann",
        request.id,
        decision="approve",
        comment="checked",
        content_hash=request.content_hash,
        password=PASSWORD,
    )
    assert result.request.state == "executed"
    return str(request.id)


def holder(world: dict[str, Any], alias: str) -> str | None:
    aliases = world["client"].get_registered_model(MODEL).aliases or {}
    value = aliases.get(alias)
    return str(value) if value is not None else None


def target_events(world: dict[str, Any], target: str) -> list[tuple[int, str, dict[str, Any]]]:
    with world["facade"].store.unit_of_work(read_only=True) as uow:
        records = uow.audit.for_object("target", f"{MODEL}/alias/{target}")
    return [(r.seq, r.action, json.loads(r.payload)) for r in records]


def settled(world: dict[str, Any]) -> bool:
    """Every delivery MLflow has sent so far has been compared with the ledger."""
    from governance.mlflow_deliveries import SqlMlflowDeliveries

    counts = SqlMlflowDeliveries(world["facade"].store.engine).counts()
    return set(counts) <= {"done"}


def test_a_flagged_move_is_in_the_chain_within_seconds_and_stays(world: dict[str, Any]) -> None:
    world["client"].set_registered_model_alias(MODEL, "challenger", "2")
    found = eventually(
        lambda: [e for e in target_events(world, "challenger") if e[1] == "out_of_band_change"],
        "the out-of-band move of @challenger in the chain",
    )
    assert (found[-1][2]["registry_versions"], found[-1][2]["ledger_version"]) == (["2"], "1")
    assert found[-1][2]["detected_by"]["source"] == "mlflow_webhook"
    eventually(lambda: settled(world), "every delivery compared")
    assert holder(world, "challenger") == "2"  # flag: recorded, not put back


def test_a_reverted_move_is_put_back_and_the_chain_holds_both_entries_in_order(
    world: dict[str, Any],
) -> None:
    world["client"].set_registered_model_alias(MODEL, "champion", "3")  # a data scientist
    eventually(lambda: holder(world, "champion") == "1", "@champion back on v1 in MLflow")
    events = eventually(
        lambda: [
            e for e in target_events(world, "champion")
            if e[1] in ("out_of_band_change", "out_of_band_reverted")
        ][-2:] or None,
        "both entries in the chain",
    )  # fmt: skip
    (change_seq, change, found), (revert_seq, reverted, done) = events
    assert (change, reverted) == ("out_of_band_change", "out_of_band_reverted")
    assert change_seq < revert_seq
    assert found["registry_versions"] == ["3"]
    assert (done["finding_seq"], done["restored_version"]) == (change_seq, "1")
    eventually(lambda: settled(world), "every delivery compared, the put-back's echo included")
    assert holder(world, "champion") == "1"


def test_a_governed_execution_racing_an_out_of_band_move_ends_on_the_governed_holder(
    world: dict[str, Any],
) -> None:
    from mlflow import MlflowClient

    from governance.domain import CLI_OPERATOR
    from governance.enforcement import ledger_view

    facade = world["facade"]
    request = facade.request_promotion("rita", MODEL, "2", "champion", "the next champion")
    rogue = MlflowClient(tracking_uri=world["tracking"], registry_uri=world["tracking"])

    def data_scientist() -> None:
        # A move before the approval would make the evidence stale (the signature is refused):
        # the race that matters starts once the decision is committed and MLflow is written.
        while facade.get_request(CLI_OPERATOR, request.id).request.state == "pending":
            time.sleep(0.005)
        for version in ("4", "3"):
            rogue.set_registered_model_alias(MODEL, "champion", version)

    thread = threading.Thread(target=data_scientist)
    thread.start()
    result = facade.sign_off(
        "ann",
        request.id,
        decision="approve",
        comment="checked",
        content_hash=request.content_hash,
        password=PASSWORD,
    )
    thread.join()
    assert result.request.state == "executed"

    def governed_and_quiet() -> bool:
        with facade.store.unit_of_work(read_only=True) as uow:
            governed = ledger_view(uow, (MODEL,))[(MODEL, "alias", "champion")].holder
        return governed == "2" and settled(world) and holder(world, "champion") == "2"

    eventually(governed_and_quiet, "@champion on exactly the governed holder v2")
    time.sleep(1.0)  # one more delivery round: nothing may move it again
    eventually(governed_and_quiet, "@champion still on v2")
    assert facade.verify_audit().ok


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - 127.0.0.1
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())


def test_forged_and_replayed_deliveries_are_refused_and_audited(
    stack: dict[str, Any], world: dict[str, Any]
) -> None:
    url = f"{stack['receiver']}/mlflow/webhooks"
    body = json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": "2026-12-10T10:00:00+00:00",
            "data": {"name": MODEL, "alias": "champion", "version": "4"},
        }
    ).encode()
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    signed = {
        "Content-Type": "application/json",
        sig.DELIVERY_HEADER: delivery,
        sig.TIMESTAMP_HEADER: stamp,
        sig.SIGNATURE_HEADER: sig.sign(SECRET, delivery, stamp, body),
    }
    forged = {**signed, sig.SIGNATURE_HEADER: sig.sign("a guess", delivery, stamp, body)}
    assert post(url, body, forged) == (401, {"error": sig.BAD_SIGNATURE})
    assert post(url, body, signed)[0] == 200  # authentic: it only makes the worker look
    assert post(url, body, signed) == (409, {"error": sig.REPLAYED})

    def refusals() -> set[str]:
        with world["facade"].store.unit_of_work(read_only=True) as uow:
            return {
                r.object_id for r in uow.audit.iterate() if r.action == "mlflow_delivery_refused"
            }

    eventually(lambda: {sig.BAD_SIGNATURE, sig.REPLAYED} <= refusals(), "both refusals audited")
    assert holder(world, "champion") == "2"  # a delivery says where to look, not what is true


def test_the_logs_name_no_secret(stack: dict[str, Any]) -> None:
    for log in stack["logs"]:
        assert SECRET not in Path(log).read_text(errors="replace")


def test_history_says_which_version_held_champion_at_a_moment(
    stack: dict[str, Any],
    world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app.cli import main as cli_main

    for key, value in stack["env"].items():  # the CLI's entry point, in this process
        monkeypatch.setenv(key, value)

    def history(*extra: str) -> dict[str, Any]:
        assert cli_main(["history", "--model", MODEL, *extra, "--json"]) == 0
        return dict(json.loads(capsys.readouterr().out))

    whole = history()
    champion = [t for t in whole["tenures"] if t["target"] == "champion"]
    sources = [t["source"] for t in champion]
    # champion was unset until the first governed move: no holder precedes it
    assert sources[:3] == ["request", "out_of_band", "put_back"]
    assert whole["now"]["alias/champion"] == ["2"]
    at = history("--at", champion[0]["since"])
    held = [(h["version"], h["source"], h["signers"]) for h in at["holders"]]
    assert ("1", "request", ["ann"]) in held
    assert at["before_countersign"] is False
    early = history("--at", "2001-01-01T00:00:00Z")
    assert early["before_countersign"] is True
    assert "no record" in early["note"]
    assert [h for h in early["holders"] if h["target"] == "champion"] == []
    assert cli_main(["history", "--model", MODEL, "--at", "yesterday"]) == 1
    assert capsys.readouterr().err.startswith("error: --at must be an ISO 8601 moment")


def test_the_receiver_refuses_to_start_without_the_secret_in_one_line(
    stack: dict[str, Any],
) -> None:
    env = {k: v for k, v in stack["env"].items() if k != "COUNTERSIGN_MLFLOW_WEBHOOK_SECRET"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "webhooks", "receive", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("error: MLflow's deliveries are signed")
    assert "Traceback" not in done.stderr
