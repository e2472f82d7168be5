"""Signed webhooks and the Prometheus exporter on a real governance database (SQLite).

A real HTTP receiver on 127.0.0.1 checks every signature and answers 500 when told to; the
workflow runs through the facade (the registry is the in-memory fake: MLflow itself is covered
by the scale-out test). The exporter runs as `python -m app.cli metrics serve` and is scraped
over HTTP.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.bootstrap import build_governance
from app.cli import main as cli_main
from app.facade import GovernanceFacade
from app.settings import Settings
from app.webhooks.dispatcher import WebhookDispatcher
from app.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_valid,
)
from governance.db import make_engine, upgrade
from governance.domain import CLI_OPERATOR
from tests.unit.fakes import PASSWORD, FakeEvidenceSource, FakeHasher, FakeRegistry

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-for-tests-only"
POLICY = """
version: 1
defaults: {approver_roles: [approver], quorum: 1, expires_after: 7d}
targets:
  champion: {quorum: 2}
"""


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that verifies signatures and can be told to fail."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.planned: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = receiver.planned.pop(0) if receiver.planned else 200
                    receiver.received.append(
                        {
                            "path": self.path,
                            "delivery": self.headers[DELIVERY_HEADER],
                            "event": self.headers[EVENT_HEADER],
                            "signed": signature_valid(
                                SECRET,
                                self.headers[TIMESTAMP_HEADER],
                                body,
                                self.headers[SIGNATURE_HEADER],
                                now=time.time(),
                            ),
                            "body": json.loads(body),
                            "status": status,
                        }
                    )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T0KEN-in-path"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ok(self) -> list[dict[str, Any]]:
        return [r for r in self.received if r["status"] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hooks")
    url = f"sqlite:///{tmp / 'governance.db'}"
    engine = make_engine(url)
    upgrade(engine)
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    env = {"COUNTERSIGN_DB_URL": url, "COUNTERSIGN_DATA_DIR": str(tmp)}
    env["COUNTERSIGN_POLICY"] = str(policy)
    settings = Settings.from_env(env, secrets_path=tmp / "none.toml")
    registry = FakeRegistry()
    registry.add("iris", "1", author="carl", metrics={"accuracy": 0.9})
    registry.add("iris", "2", author="carl", metrics={"accuracy": 0.93})
    registry.aliases[("iris", "champion")] = "1"
    evidence = FakeEvidenceSource()
    evidence.drift[("iris", "2")] = {"share_drifted": 0.25, "drifted_columns": ["a"]}
    facade = build_governance(settings, registry=registry, hasher=FakeHasher(), evidence=evidence)
    for name, role in (("rita", "requester"), ("ann", "approver"), ("ben", "approver")):
        facade.create_user(CLI_OPERATOR, name, [role], PASSWORD)
    receiver = Receiver()
    yield {
        "url": url,
        "env": env,
        "engine": engine,
        "facade": facade,
        "registry": registry,
        "receiver": receiver,
    }
    receiver.close()
    facade.dispose()
    engine.dispose()


def promote(facade: GovernanceFacade) -> str:
    request = facade.request_promotion("rita", "iris", "2", "champion", "more accurate")
    for approver in ("ann", "ben"):
        facade.sign_off(
            approver,
            request.id,
            decision="approve",
            comment="reviewed",
            content_hash=request.content_hash,
            password=PASSWORD,
        )
    return request.id


def test_signed_webhooks_follow_the_commit_retry_after_a_500_and_never_repeat(
    world: dict[str, Any],
) -> None:
    receiver: Receiver = world["receiver"]
    clock = Clock()
    lines: list[str] = []
    dispatcher = WebhookDispatcher(
        world["engine"], [receiver.url], SECRET, backoff_s=30, clock=clock, log=lines.append
    )
    assert dispatcher.run_once().queued == 0  # a new endpoint starts at the chain head
    request_id = promote(world["facade"])
    receiver.planned = [500]  # the first delivery fails once

    first = dispatcher.run_once()
    assert (first.delivered, first.retrying, first.gave_up) == (first.queued - 1, 1, 0)
    assert dispatcher.run_once().delivered == 0  # the retry is not due yet
    clock.now += timedelta(seconds=31)
    assert dispatcher.run_once().delivered == 1
    assert dispatcher.run_once() == type(first)()  # nothing new, nothing repeated

    assert all(r["signed"] for r in receiver.received)
    delivered = [r["delivery"] for r in receiver.ok()]
    assert len(delivered) == len(set(delivered)) == first.queued
    failed = [r for r in receiver.received if r["status"] == 500]
    assert len(failed) == 1
    assert failed[0]["delivery"] in delivered  # the retry kept its delivery id
    events = Counter(r["event"] for r in receiver.ok())
    assert events == {
        "request_created": 1,
        "vote_recorded": 2,
        "request_approved": 1,
        "execution_succeeded": 1,
    }
    bodies = [r["body"] for r in receiver.ok()]
    assert {b["object_id"] for b in bodies} == {request_id}
    assert all(b["text"].startswith("Countersign: ") for b in bodies)
    created = next(b for b in bodies if b["event"] == "request_created")
    assert "iris v2 -> champion by rita" in created["text"]
    # the retried delivery arrives last; `seq` lets a receiver put things back in order
    assert bodies[-1]["seq"] < bodies[0]["seq"]
    # the log names neither the URL's path (a token) nor the secret
    assert lines
    assert not [line for line in lines if "T0KEN" in line or SECRET in line]


def test_a_wrong_secret_or_an_old_timestamp_fails_the_signature_check() -> None:
    from app.webhooks.signing import signature

    body = b'{"text":"x"}'
    stamp = str(int(time.time()))
    header = signature(SECRET, stamp, body)
    assert signature_valid(SECRET, stamp, body, header, now=time.time())
    assert not signature_valid("other", stamp, body, header, now=time.time())
    assert not signature_valid(SECRET, stamp, body + b" ", header, now=time.time())
    assert not signature_valid(SECRET, stamp, body, header, now=time.time() + 3600)


def test_an_out_of_band_change_is_announced_once_even_with_two_dispatchers_racing(
    world: dict[str, Any],
) -> None:
    receiver: Receiver = world["receiver"]
    dispatchers = [WebhookDispatcher(world["engine"], [receiver.url], SECRET) for _ in range(2)]
    dispatchers[0].run_once()  # the endpoint is known (and caught up) before the change
    before = len(receiver.ok())
    world["registry"].aliases[("iris", "champion")] = "1"  # moved behind the ledger's back
    findings = world["facade"].reconcile(CLI_OPERATOR)
    assert [f.newly_recorded for f in findings] == [True]
    barrier = threading.Barrier(2)

    def run(dispatcher: WebhookDispatcher) -> None:
        barrier.wait()
        for _ in range(3):
            dispatcher.run_once()

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    new = receiver.ok()[before:]
    assert [r["event"] for r in new] == ["out_of_band_change"]
    assert "OUT-OF-BAND CHANGE in MLflow iris" in new[0]["body"]["text"]


def test_the_deliver_command_runs_a_pass_and_refuses_a_missing_secret(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in world["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COUNTERSIGN_WEBHOOK_URLS", world["receiver"].url)
    monkeypatch.delenv("COUNTERSIGN_WEBHOOK_SECRET", raising=False)
    assert cli_main(["webhooks", "deliver", "--once"]) == 1
    assert "COUNTERSIGN_WEBHOOK_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("COUNTERSIGN_WEBHOOK_SECRET", SECRET)
    assert cli_main(["webhooks", "deliver", "--once"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("webhooks: ")
    assert SECRET not in out
    assert "T0KEN" not in out
    assert cli_main(["webhooks", "prune", "--older-than-days", "0"]) == 1
    assert cli_main(["webhooks", "prune", "--older-than-days", "30"]) == 0
    assert "removed 0 outbox rows" in capsys.readouterr().out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int, deadline_s: float = 60) -> str:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def test_metrics_serve_exposes_the_workflow_series_over_http(world: dict[str, Any]) -> None:
    facade: GovernanceFacade = world["facade"]
    world["registry"].add("iris", "3", author="carl", metrics={"accuracy": 0.95})
    facade.request_promotion("rita", "iris", "3", "challenger", "try it")  # stays pending
    # The drift share series is the latest monitoring batch's, not the 0.25 of request evidence.
    from governance.monitoring_service import record_batch
    from tests.integration.test_monitoring_store import batch

    monitored = replace(batch("iris", 1, 0.4, accuracy=0.91), version="2", batch_id="iris-2-1")
    record_batch(facade.store.unit_of_work(), facade.context, CLI_OPERATOR, monitored)
    port = free_port()
    env = {**os.environ, **world["env"], "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "metrics", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        text = scrape(port)
    finally:
        process.terminate()
        process.wait(timeout=20)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("countersign_governance_db_up", ())] == 1
    assert samples[("countersign_pending_requests", (("age", "lt_1h"),))] >= 1
    assert samples[("countersign_requests", (("state", "executed"),))] >= 1
    assert samples[("countersign_decisions_total", (("outcome", "approved"),))] >= 1
    assert samples[("countersign_executions_total", (("outcome", "succeeded"),))] >= 1
    assert samples[("countersign_out_of_band_changes_total", ())] >= 1
    drift = (("model", "iris"), ("version", "2"))
    assert samples[("countersign_model_drift_share", drift)] == 0.4
    assert samples[("countersign_model_quality", (("metric", "accuracy"), *drift))] == 0.91
    assert samples[("countersign_monitoring_batches_total", ())] == 1
    assert samples[("countersign_audit_chain_valid", ())] == 1
    assert samples[("countersign_audit_chain_events", ())] > 5
    assert ("countersign_pending_request_oldest_age_seconds", ()) in samples
    assert process.returncode == 0


def test_racing_dispatchers_deliver_each_step_once_on_sqlite_and_postgresql(
    empty_db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(empty_db_url)
    upgrade(engine)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    env = {"COUNTERSIGN_DB_URL": empty_db_url, "COUNTERSIGN_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env(
        {**env, "COUNTERSIGN_POLICY": str(policy)}, secrets_path=tmp_path / "none.toml"
    )
    registry = FakeRegistry()
    registry.add("iris", "2", author="carl", metrics={"accuracy": 0.93})
    facade = build_governance(settings, registry=registry, hasher=FakeHasher())
    receiver = Receiver()
    try:
        for name, role in (("rita", "requester"), ("ann", "approver"), ("ben", "approver")):
            facade.create_user(CLI_OPERATOR, name, [role], PASSWORD)
        dispatchers = [WebhookDispatcher(engine, [receiver.url], SECRET) for _ in range(3)]
        dispatchers[0].run_once()
        promote(facade)
        barrier = threading.Barrier(len(dispatchers))

        def run(dispatcher: WebhookDispatcher) -> None:
            barrier.wait()
            for _ in range(4):
                dispatcher.run_once()

        threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        deliveries = [r["delivery"] for r in receiver.received]
        assert len(deliveries) == len(set(deliveries)) == 5
        assert all(r["signed"] for r in receiver.received)
        assert dispatchers[0].outbox.counts() == {"delivered": 5}
        assert dispatchers[0].outbox.prune(datetime.now(UTC) - timedelta(days=1)) == 0
        assert dispatchers[0].outbox.prune(datetime.now(UTC) + timedelta(seconds=1)) == 5
        assert dispatchers[0].run_once().queued == 0  # the cursor keeps them from coming back
        assert len(receiver.received) == 5
    finally:
        receiver.close()
        facade.dispose()
        engine.dispose()
