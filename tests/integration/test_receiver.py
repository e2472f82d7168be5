"""The receiver on a real governance database (SQLite and PostgreSQL), through its ASGI app.

MLflow is the in-memory fake registry here (the real `mlflow server` is exercised by
tests/integration/test_registry_enforcement.py); the deliveries are signed exactly as MLflow
signs them. The worker is driven pass by pass, so every assertion is about behaviour.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # Starlette nudges towards httpx2, which is not installed here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from app.bootstrap import build_governance
from app.facade import GovernanceFacade
from app.receiver import signature as sig
from app.receiver.app import PATH, build_app
from app.receiver.refusals import RefusalLog
from app.receiver.worker import EnforcementWorker
from app.settings import Settings
from governance.db import make_engine, upgrade
from governance.domain import CLI_OPERATOR, MLFLOW_WEBHOOKS, AuditAction
from governance.mlflow_deliveries import SqlMlflowDeliveries
from tests.unit.fakes import PASSWORD, FakeHasher, FakeRegistry

SECRET = "receiver-test-secret"
POLICY = "version: 1\ndefaults: {quorum: 1, out_of_band: revert}\n"


def mlflow_body(event: str = "model_version_alias.created", **data: Any) -> bytes:
    entity, _, action = event.rpartition(".")
    payload = {"name": "iris", "alias": "champion", "version": "3", **data}
    body = {"entity": entity, "action": action, "timestamp": "2026-12-10T10:00:00+00:00"}
    return json.dumps({**body, "data": payload}).encode()


def headers(body: bytes, *, delivery: str = "", stamp: int | None = None, secret: str = SECRET):
    delivery = delivery or str(uuid.uuid4())
    stamp_text = str(int(time.time()) if stamp is None else stamp)
    return {
        "Content-Type": "application/json",
        sig.DELIVERY_HEADER: delivery,
        sig.TIMESTAMP_HEADER: stamp_text,
        sig.SIGNATURE_HEADER: sig.sign(secret, delivery, stamp_text, body),
    }


@dataclass
class Stack:
    facade: GovernanceFacade
    registry: FakeRegistry
    deliveries: SqlMlflowDeliveries
    refusals: RefusalLog
    worker: EnforcementWorker
    client: TestClient

    def actions(self, *names: str) -> list[str]:
        with self.facade.store.unit_of_work(read_only=True) as uow:
            return [r.action for r in uow.audit.iterate() if r.action in names]


@pytest.fixture(params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'governance.db'}"
    else:
        url = str(request.getfixturevalue("empty_db_url_pg"))
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    settings = Settings.from_env(
        {
            "COUNTERSIGN_DB_URL": url,
            "COUNTERSIGN_DATA_DIR": str(tmp_path),
            "COUNTERSIGN_POLICY": str(tmp_path / "policy.yaml"),
        },
        secrets_path=tmp_path / "none.toml",
    )
    registry = FakeRegistry()
    for version in ("1", "2", "3"):
        registry.add("iris", version, author="dan", metrics={"accuracy": 0.9})
    facade = build_governance(settings, registry=registry, hasher=FakeHasher())
    facade.create_user(CLI_OPERATOR, "rita", ["requester"], PASSWORD)
    facade.create_user(CLI_OPERATOR, "carol", ["approver"], PASSWORD)
    deliveries = SqlMlflowDeliveries(facade.store.engine)

    def record(reason: str, details: Any) -> None:
        facade.record_refused_delivery(MLFLOW_WEBHOOKS, reason, details)

    refusals = RefusalLog(record)
    worker = EnforcementWorker(
        deliveries,
        lambda model, found_by: facade.enforce(MLFLOW_WEBHOOKS, (model,), found_by),
        refusals,
        log=lambda _line: None,
    )
    client = TestClient(build_app(SECRET, deliveries, refusals))
    try:
        yield Stack(facade, registry, deliveries, refusals, worker, client)
    finally:
        client.close()
        facade.dispose()


@pytest.fixture
def empty_db_url_pg(pg_url: str) -> Iterator[str]:
    import psycopg

    admin = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"cs_rx_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def govern_champion(stack: Stack, version: str = "2") -> None:
    request = stack.facade.request_promotion("rita", "iris", version, "champion", "better")
    stack.facade.sign_off(
        "carol",
        request.id,
        decision="approve",
        comment="ok",
        content_hash=request.content_hash,
        password=PASSWORD,
    )
    assert stack.registry.aliases[("iris", "champion")] == version


def test_a_signed_delivery_is_stored_at_once_and_the_worker_puts_the_alias_back(
    stack: Stack,
) -> None:
    govern_champion(stack)
    stack.registry.aliases[("iris", "champion")] = "3"
    body = mlflow_body()
    answer = stack.client.post(PATH, content=body, headers=headers(body))
    assert answer.status_code == 200, answer.text
    assert stack.actions(AuditAction.OUT_OF_BAND_CHANGE) == []  # the request only stored it
    assert stack.worker.run_once() == 1
    assert stack.registry.aliases[("iris", "champion")] == "2"
    assert stack.actions(AuditAction.OUT_OF_BAND_CHANGE, AuditAction.OUT_OF_BAND_REVERTED) == [
        AuditAction.OUT_OF_BAND_CHANGE,
        AuditAction.OUT_OF_BAND_REVERTED,
    ]
    assert stack.deliveries.counts() == {"done": 1}
    # The put-back's own webhook: MLflow now agrees with the ledger, nothing more is written.
    echo = mlflow_body(version="2")
    assert stack.client.post(PATH, content=echo, headers=headers(echo)).status_code == 200
    before = len(stack.actions(*vars(AuditAction).values()))
    stack.worker.run_once()
    assert len(stack.actions(*vars(AuditAction).values())) == before


@pytest.mark.parametrize(
    ("tamper", "status", "reason"),
    [
        ("signature", 401, sig.BAD_SIGNATURE),
        ("secret", 401, sig.BAD_SIGNATURE),
        ("body", 401, sig.BAD_SIGNATURE),
        ("stale", 401, sig.STALE_TIMESTAMP),
        ("future", 401, sig.STALE_TIMESTAMP),
        ("headers", 400, sig.MISSING_HEADERS),
        ("delivery_id", 401, sig.BAD_DELIVERY_ID),
    ],
)
def test_forged_or_stale_deliveries_are_refused_stored_nowhere_and_audited(
    stack: Stack, tamper: str, status: int, reason: str
) -> None:
    body = mlflow_body()
    sent = headers(body)
    if tamper == "signature":
        sent[sig.SIGNATURE_HEADER] = "v1," + "A" * 44
    elif tamper == "secret":
        sent = headers(body, secret="guessed")
    elif tamper == "body":
        body = mlflow_body(version="1")  # signed for v3, claims v1
    elif tamper == "stale":
        sent = headers(body, stamp=int(time.time()) - 301)
    elif tamper == "future":
        sent = headers(body, stamp=int(time.time()) + 301)
    elif tamper == "headers":
        del sent[sig.SIGNATURE_HEADER]
    elif tamper == "delivery_id":
        sent = headers(body, delivery="<script>/../x")
    answer = stack.client.post(PATH, content=body, headers=sent)
    assert (answer.status_code, answer.json()["error"]) == (status, reason)
    assert stack.deliveries.counts() == {}
    stack.worker.housekeeping()
    with stack.facade.store.unit_of_work(read_only=True) as uow:
        refused = [
            r for r in uow.audit.iterate() if r.action == AuditAction.MLFLOW_DELIVERY_REFUSED
        ]
    assert [(r.object_id, json.loads(r.payload)["count"]) for r in refused] == [(reason, 1)]
    assert refused[0].actor == MLFLOW_WEBHOOKS


def test_a_replayed_delivery_id_is_refused_on_every_replica_and_audited(stack: Stack) -> None:
    body = mlflow_body()
    sent = headers(body)
    assert stack.client.post(PATH, content=body, headers=sent).status_code == 200
    other_replica = TestClient(build_app(SECRET, stack.deliveries, stack.refusals))
    for client in (stack.client, other_replica):
        answer = client.post(PATH, content=body, headers=sent)
        assert (answer.status_code, answer.json()["error"]) == (409, sig.REPLAYED)
    other_replica.close()
    assert stack.deliveries.counts() == {"pending": 1}
    stack.worker.housekeeping()
    assert stack.actions(AuditAction.MLFLOW_DELIVERY_REFUSED) == [
        AuditAction.MLFLOW_DELIVERY_REFUSED
    ]


def test_a_body_beyond_the_bound_is_refused_unread(stack: Stack) -> None:
    body = b"{" + b" " * (300 * 1024) + b"}"
    answer = stack.client.post(PATH, content=body, headers=headers(body))
    assert answer.status_code == 413


def test_a_signed_body_that_is_no_mlflow_event_is_refused(stack: Stack) -> None:
    body = b'["not", "an", "event"]'
    answer = stack.client.post(PATH, content=body, headers=headers(body))
    assert (answer.status_code, answer.json()["error"]) == (400, sig.MALFORMED_BODY)


def test_events_that_move_nothing_are_marked_done_without_a_comparison(stack: Stack) -> None:
    body = json.dumps({"entity": "prompt", "action": "created", "data": {"name": "p"}}).encode()
    assert stack.client.post(PATH, content=body, headers=headers(body)).status_code == 200
    stack.worker.run_once()
    assert stack.deliveries.counts() == {"done": 1}
    assert stack.registry.calls == []


def test_two_workers_claim_each_delivery_exactly_once(stack: Stack) -> None:
    for _ in range(30):
        body = mlflow_body(event="model_version_tag.set", key="k", value="v")
        assert stack.client.post(PATH, content=body, headers=headers(body)).status_code == 200
    from datetime import UTC, datetime, timedelta

    claimed: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def grab(k: int) -> None:
        start.wait()
        for _ in range(5):
            items = stack.deliveries.claim(datetime.now(UTC), timedelta(minutes=1), limit=10)
            claimed[k].extend(i.delivery_id for i in items)

    threads = [threading.Thread(target=grab, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = claimed[0] + claimed[1]
    assert len(every) == len(set(every)) == 30


@pytest.mark.parametrize(
    ("failure", "after"),
    [("unknown model", {"done": 1}), ("mlflow down", {"pending": 1})],
)
def test_a_comparison_that_fails_is_retried_and_a_vanished_model_is_let_go(
    stack: Stack, failure: str, after: dict[str, int]
) -> None:
    from governance.errors import RegistryUnavailable, UnknownModel

    def compare(model: str, found_by: Any) -> None:
        if failure == "unknown model":
            raise UnknownModel(f"the registry has no model {model!r}")
        raise RegistryUnavailable("MLflow cannot be reached")

    lines: list[str] = []
    worker = EnforcementWorker(stack.deliveries, compare, log=lines.append)
    body = mlflow_body()
    assert stack.client.post(PATH, content=body, headers=headers(body)).status_code == 200
    assert worker.run_once() == 1
    assert stack.deliveries.counts() == after
    assert worker.run_once() == 0  # a retry waits for its backoff
    assert len(lines) == 1
