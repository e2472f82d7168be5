"""The production topology, natively: two app replicas on one PostgreSQL governance database.

Started here, on 127.0.0.1: a real `mlflow server` whose backend store is a PostgreSQL database
(served artifacts in a temporary folder), a fresh PostgreSQL governance database migrated by
`python -m app.cli db upgrade`, and two `streamlit run app/main.py` processes on two ports with
separate data dirs (nothing shared but the databases and MLflow). Two approvers sign the same
request in Debian's Chromium, one through each replica, submitting at the same moment. Exactly
one execution happens, MLflow's alias moves once, both replicas then show the executed request,
the webhook outbox announces every step exactly once, and the chain verifies.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.seal_keys import write_new_key
from app.settings import Settings
from tests.browser_support import (
    ROOT,
    chromium,
    free_port,
    require_chromium,
    screenshot_on_failure,
    sign_in,
    streamlit_argv,
    wait_http,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.browser]

WAIT_MS = 90_000
PASSWORD = "scale-out-pass-123"  # a throwaway account in a throwaway database
MODEL = "scale-out-model"


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    running = [proc for proc in processes if proc.poll() is None]
    for proc in running:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its workers only
    for proc in running:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def databases(pg_url: str, count: int) -> Iterator[list[str]]:
    import psycopg

    head, _, _ = pg_url.rpartition("/")
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    names = [f"cs_scale_{uuid.uuid4().hex[:10]}" for _ in range(count)]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield [f"{head}/{name}" for name in names]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_chromium()
    folder = tmp_path_factory.mktemp("scale-out")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "COUNTER"))}
    processes: list[subprocess.Popen[bytes]] = []
    db_iter = databases(pg_url, 2)
    governance_url, mlflow_db_url = next(db_iter)
    try:
        mlflow_port = free_port()
        mlflow_env = {**base_env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
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
        # One seal key for every replica and job, as the deployments mount it from one Secret
        # (a key made per data folder would make each replica's seals foreign to the other).
        seal_key = folder / "audit-seal.key"
        write_new_key(seal_key)
        env = {
            **base_env,
            "PYTHONPATH": str(ROOT),
            "MLFLOW_TRACKING_URI": tracking,
            "COUNTERSIGN_DB_URL": governance_url,
            "COUNTERSIGN_AUTH": "local",
            "COUNTERSIGN_AUDIT_SEAL_KEY_FILE": str(seal_key),
        }
        migrate = subprocess.run(
            [sys.executable, "-m", "app.cli", "db", "upgrade"],
            cwd=ROOT,
            env={**env, "COUNTERSIGN_DATA_DIR": str(folder / "cli")},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stderr
        replicas = []
        for k in (1, 2):
            port = free_port()
            replica_env = {**env, "COUNTERSIGN_DATA_DIR": str(folder / f"replica-{k}")}
            log = folder / f"replica-{k}.log"
            proc = start(streamlit_argv(port), replica_env, log)
            processes.append(proc)
            replicas.append((f"http://127.0.0.1:{port}", proc, log))
        wait_http(f"{tracking}/health", processes[0], mlflow_log, timeout_s=150)
        for url, proc, log in replicas:
            wait_http(f"{url}/_stcore/health", proc, log, timeout_s=150)
        settings = Settings.from_env(
            {**env, "COUNTERSIGN_DATA_DIR": str(folder / "test")},
            secrets_path=folder / "none.toml",
        )
        yield {
            "settings": settings,
            "tracking": tracking,
            "replicas": [url for url, _, _ in replicas],
            "folder": folder,
        }
    finally:
        stop(processes)
        next(db_iter, None)


def seed_registry(tracking: str) -> None:
    """A registered model with two versions from a run authored by someone else (dora)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    experiment = client.create_experiment("scale-out")
    run = client.create_run(experiment, tags={"mlflow.user": "dora"})
    client.log_metric(run.info.run_id, "accuracy", 0.91)
    client.set_terminated(run.info.run_id)
    client.create_registered_model(MODEL)
    for _ in range(2):
        client.create_model_version(MODEL, f"{run.info.artifact_uri}/model", run.info.run_id)
    client.set_registered_model_alias(MODEL, "champion", "1")


def sign_in_on_both(browser: Any, urls: list[str], names: tuple[str, str]) -> list[Any]:
    """Open a fresh visitor on each replica and sign in; both replicas render at once."""
    pages = []
    for url in urls:
        page = browser.new_context().new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        pages.append(page)
    for page, name in zip(pages, names, strict=True):
        with screenshot_on_failure(page, f"scale-out-{name}"):
            sign_in(page, name, PASSWORD)
    return pages


def test_two_replicas_take_simultaneous_approvals_and_execute_exactly_once(
    stack: dict[str, Any],
) -> None:
    from playwright.sync_api import expect

    from app.bootstrap import build_governance
    from app.webhooks.dispatcher import WebhookDispatcher
    from governance.domain import CLI_OPERATOR, AuditAction

    seed_registry(stack["tracking"])
    facade = build_governance(stack["settings"])
    try:
        facade.create_user(CLI_OPERATOR, "root", ["admin"], PASSWORD)  # the gate needs an admin
        facade.create_user(CLI_OPERATOR, "rita", ["requester"], PASSWORD)
        facade.create_user(CLI_OPERATOR, "ann", ["approver"], PASSWORD)
        facade.create_user(CLI_OPERATOR, "ben", ["approver"], PASSWORD)
        # Every step from here on is announced; a receiver-less endpoint keeps the outbox rows.
        hooks = WebhookDispatcher(
            facade.store.engine, ["http://127.0.0.1:9/never"], "secret", send=lambda *a: "down"
        )
        hooks.run_once()
        request = facade.request_promotion("rita", MODEL, "2", "champion", "scale-out check")
        assert facade.get_request(CLI_OPERATOR, request.id).quorum == 2

        with chromium() as browser:
            urls = [f"{url}/approvals?request={request.id}" for url in stack["replicas"]]
            names = ("ann", "ben")
            pages = sign_in_on_both(browser, urls, names)
            for page, name in zip(pages, names, strict=True):
                expect(page.get_by_role("button", name="Approve")).to_be_visible(timeout=WAIT_MS)
                page.get_by_role("textbox", name="Comment").fill(f"checked by {name}")
                page.get_by_role("textbox", name="Password").fill(PASSWORD)
            # Both signatures leave at the same moment, one through each replica.
            for page in pages:
                page.get_by_role("button", name="Approve").click(no_wait_after=True)
            deadline = time.monotonic() + WAIT_MS / 1000
            while facade.get_request(CLI_OPERATOR, request.id).request.state != "executed":
                assert time.monotonic() < deadline, "the request was not executed"
                time.sleep(0.5)
            # Each replica, opened by a new visitor, shows the executed request from the database.
            for page in sign_in_on_both(browser, urls, names):
                state = page.get_by_text(re.compile(r"State:.*executed"))
                expect(state).to_be_visible(timeout=WAIT_MS)

        details = facade.get_request(CLI_OPERATOR, request.id)
        assert details.request.state == "executed"
        assert sorted(v.approver for v in details.votes) == ["ann", "ben"]
        assert [e.outcome for e in details.executions] == ["succeeded"]
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=stack["tracking"], registry_uri=stack["tracking"])
        assert client.get_model_version_by_alias(MODEL, "champion").version == "2"
        with facade.store.unit_of_work(read_only=True) as uow:
            actions = Counter(r.action for r in uow.audit.for_object("request", request.id))
        assert actions[AuditAction.EXECUTION_SUCCEEDED] == 1
        assert actions[AuditAction.REQUEST_APPROVED] == 1
        assert actions[AuditAction.VOTE_RECORDED] == 2
        verified = facade.verify_audit()
        assert verified.ok, verified.reason

        hooks.run_once()
        queued = hooks.outbox.counts()
        assert sum(queued.values()) == 5  # created, two votes, approved, executed: once each
    finally:
        facade.dispose()
