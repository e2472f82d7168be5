"""Monitoring batches and findings on real SQLite and PostgreSQL databases (after `db upgrade`).

The workflow runs through the facade's store and policy; batches are built directly (scoring is
covered by the parity and CLI tests). Also: the Prometheus exposition of the monitoring series
parsed by prometheus_client's parser, a `monitoring_alert` delivered to a local receiver with its
signature checked, and the promotion gate that reads monitoring results.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.batch_monitoring.scoring import canonical
from app.bootstrap import build_governance
from app.facade import GovernanceFacade
from app.metrics import GovernanceCollector
from app.settings import Settings
from app.webhooks.dispatcher import WebhookDispatcher
from governance import monitoring_service as svc
from governance.db import make_engine, upgrade
from governance.domain import CLI_OPERATOR, AuditAction
from governance.errors import GateFailed, InvalidInput, NotAllowed, NotFound
from governance.monitoring_rules import MonitoringBatch
from tests.integration.test_webhooks_metrics import SECRET, Receiver
from tests.unit.fakes import PASSWORD, FakeHasher, FakeRegistry

T0 = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = """
version: 1
defaults: {approver_roles: [approver], quorum: 1, expires_after: 7d}
targets:
  champion:
    quorum: 1
    gates:
      - monitoring: {min_batches: 1, only_when_current_holds: true}
models:
  "*":
    monitoring:
      max_drift_share: 0.3
      metrics: {accuracy: {min: 0.9}}
      consecutive: 2
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('monitoring') / 'governance.db'}"
        return
    import psycopg

    base = str(request.getfixturevalue("pg_url"))
    admin = base.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"cs_mon_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{base.rpartition('/')[0]}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def world(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("world")
    engine = make_engine(db_url)
    upgrade(engine)
    (tmp / "policy.yaml").write_text(POLICY, encoding="utf-8")
    env = {"COUNTERSIGN_DB_URL": db_url, "COUNTERSIGN_DATA_DIR": str(tmp)}
    settings = Settings.from_env(
        {**env, "COUNTERSIGN_POLICY": str(tmp / "policy.yaml")}, secrets_path=tmp / "none.toml"
    )
    registry = FakeRegistry()
    facade = build_governance(settings, registry=registry, hasher=FakeHasher())
    for name, role in (("ann", "approver"), ("vic", "viewer"), ("rita", "requester")):
        facade.create_user(CLI_OPERATOR, name, [role], PASSWORD)
    yield {"facade": facade, "engine": engine, "registry": registry}
    facade.dispose()
    engine.dispose()


def batch(
    model: str, day: int, share: float, accuracy: float | None = None, version: str = "1"
) -> MonitoringBatch:
    columns = [{"column": "a", "type": "num", "method": "K-S p_value", "score": 0.01,
                "threshold": 0.05, "drifted": True}]  # fmt: skip
    return MonitoringBatch(
        batch_id=f"{model}-{version}-{day}"[-32:],
        model=model,
        version=version,
        content_sha256=f"{day:064d}",
        as_of=T0 + timedelta(days=day),
        recorded_at=T0,
        recorded_by="",
        source=f"/data/{model}/day-{day}.parquet",
        rows=1000 + day,
        reference_rows=5000,
        dataset_drift=share >= 0.5,
        share_drifted=share,
        drift_share_threshold=0.5,
        drifted_columns=("a",),
        columns=canonical(columns),
        quality=canonical({"task": "classification", "accuracy": accuracy}) if accuracy else "",
    )


def record(facade: GovernanceFacade, item: MonitoringBatch, actor: str = CLI_OPERATOR) -> Any:
    return svc.record_batch(facade.store.unit_of_work(), facade.context, actor, item)


def audit(facade: GovernanceFacade, *actions: str) -> list[Any]:
    with facade.store.unit_of_work(read_only=True) as uow:
        return [r for r in uow.audit.iterate() if r.action in actions]


def test_a_batch_is_a_row_plus_one_audit_entry_naming_its_hash_and_verdict(
    world: dict[str, Any],
) -> None:
    facade = world["facade"]
    done = record(facade, batch("rowmodel", 1, 0.25, accuracy=0.95))
    assert not done.already_recorded
    stored = svc.get_batch(
        facade.store.unit_of_work(read_only=True), facade.context, "vic", done.batch.batch_id
    )
    assert stored.as_of == T0 + timedelta(days=1)
    assert stored.as_of.tzinfo is not None
    assert stored.recorded_by == CLI_OPERATOR
    assert stored.drifted_columns == ("a",)
    assert stored.metrics() == {"accuracy": 0.95}
    entries = [
        json.loads(r.payload)
        for r in audit(facade, AuditAction.MONITORING_BATCH_RECORDED)
        if r.object_id == "rowmodel/1"
    ]
    assert entries == [
        {
            "batch_id": stored.batch_id,
            "model": "rowmodel",
            "version": "1",
            "content_sha256": "1".rjust(64, "0"),
            "as_of": "2026-11-02T00:00:00+00:00",
            "rows": 1001,
            "dataset_drift": False,
            "share_drifted": 0.25,
            "drifted_columns": 1,
            "quality": {"accuracy": 0.95},
        }
    ]
    assert facade.verify_audit().ok


def test_recording_the_same_content_again_changes_nothing(world: dict[str, Any]) -> None:
    facade = world["facade"]
    first = record(facade, batch("again", 1, 0.1))
    before = len(audit(facade, AuditAction.MONITORING_BATCH_RECORDED))
    repeat = record(facade, replace(batch("again", 1, 0.1), as_of=T0 + timedelta(days=9)))
    assert repeat.already_recorded
    assert repeat.batch.as_of == first.batch.as_of  # the stored batch answers
    assert len(audit(facade, AuditAction.MONITORING_BATCH_RECORDED)) == before
    listed = svc.list_batches(
        facade.store.unit_of_work(read_only=True), facade.context, "vic", "again", "1"
    )
    assert len(listed) == 1


def test_two_runs_of_one_batch_at_once_record_it_once(world: dict[str, Any]) -> None:
    facade = world["facade"]
    item = batch("race", 1, 0.2)
    barrier = threading.Barrier(4)
    outcomes: list[Any] = []

    def run() -> None:
        barrier.wait()
        outcomes.append(record(facade, item))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.already_recorded for o in outcomes) == [False, True, True, True]
    entries = [
        r for r in audit(facade, AuditAction.MONITORING_BATCH_RECORDED) if r.object_id == "race/1"
    ]
    assert len(entries) == 1


def test_a_threshold_crossed_twice_in_a_row_opens_one_finding_with_an_alert(
    world: dict[str, Any],
) -> None:
    facade = world["facade"]
    assert record(facade, batch("alerting", 1, 0.4, accuracy=0.95)).opened == ()
    opened = record(facade, batch("alerting", 2, 0.5, accuracy=0.95)).opened
    assert [(f.check, f.value, f.limit, f.consecutive) for f in opened] == [
        ("drift_share", 0.5, "drift_share <= 0.3", 2)
    ]
    assert record(facade, batch("alerting", 3, 0.6, accuracy=0.95)).opened == ()  # still open
    alerts = [
        json.loads(r.payload)
        for r in audit(facade, AuditAction.MONITORING_ALERT)
        if r.object_id == "alerting/1"
    ]
    assert len(alerts) == 1
    assert alerts[0]["finding_id"] == opened[0].id
    assert alerts[0]["batch_id"] == batch("alerting", 2, 0).batch_id
    assert alerts[0]["required_consecutive"] == 2


def test_a_person_closes_a_finding_with_a_comment_and_others_are_refused(
    world: dict[str, Any],
) -> None:
    facade = world["facade"]
    record(facade, batch("closing", 1, 0.9))
    (finding,) = record(facade, batch("closing", 2, 0.9)).opened
    uow = facade.store.unit_of_work
    refused_before = len(audit(facade, AuditAction.ACTION_REFUSED))
    with pytest.raises(NotAllowed, match="not allowed to record monitoring batches"):
        svc.close_finding(uow(), facade.context, "vic", finding.id, "looked at it")
    with pytest.raises(NotAllowed, match="closed by a person"):
        svc.close_finding(uow(), facade.context, CLI_OPERATOR, finding.id, "automated")
    with pytest.raises(NotFound, match="no monitoring finding"):
        svc.close_finding(uow(), facade.context, "ann", "nope", "looked at it")
    assert len(audit(facade, AuditAction.ACTION_REFUSED)) == refused_before + 3
    with pytest.raises(InvalidInput, match="a comment is mandatory"):
        svc.close_finding(uow(), facade.context, "ann", finding.id, "   ")
    closed = svc.close_finding(uow(), facade.context, "ann", finding.id, "retraining scheduled")
    assert closed.closed_now
    assert (closed.finding.state, closed.finding.closed_by) == ("closed", "ann")
    again = svc.close_finding(uow(), facade.context, "ann", finding.id, "double click")
    assert not again.closed_now
    assert again.finding.comment == "retraining scheduled"
    entries = [json.loads(r.payload) for r in audit(facade, AuditAction.MONITORING_FINDING_CLOSED)]
    assert [e["comment"] for e in entries if e["finding_id"] == finding.id] == [
        "retraining scheduled"
    ]
    # Closing starts a new streak: one more crossing batch is not enough, two are.
    assert record(facade, batch("closing", 3, 0.9)).opened == ()
    assert len(record(facade, batch("closing", 4, 0.9)).opened) == 1


def test_a_viewer_may_not_record_batches_and_the_refusal_is_audited(world: dict[str, Any]) -> None:
    facade = world["facade"]
    with pytest.raises(NotAllowed):
        record(facade, batch("viewer", 1, 0.1), actor="vic")
    refusals = [json.loads(r.payload) for r in audit(facade, AuditAction.ACTION_REFUSED)]
    assert any(p["attempted"] == "record_batch" for p in refusals)


def scrape(facade: GovernanceFacade) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(GovernanceCollector(facade.store.engine, verify_interval_s=3600))
    text = generate_latest(registry).decode("utf-8")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_prometheus_serves_the_latest_batch_of_each_version(world: dict[str, Any]) -> None:
    facade = world["facade"]
    record(facade, batch("scraped", 5, 0.2, accuracy=0.97))
    record(facade, batch("scraped", 2, 0.7, accuracy=0.81))  # older as-of, recorded later
    record(facade, batch("scraped", 3, 0.05, version="2"))
    samples = scrape(facade)
    one, two = (("model", "scraped"), ("version", "1")), (("model", "scraped"), ("version", "2"))
    assert samples[("countersign_model_drift_share", one)] == 0.2
    assert samples[("countersign_model_drift_share", two)] == 0.05
    accuracy = (("metric", "accuracy"), *one)
    assert samples[("countersign_model_quality", accuracy)] == 0.97
    assert not any(
        k[0] == "countersign_model_quality" and ("version", "2") in k[1] for k in samples
    )
    with facade.store.unit_of_work(read_only=True) as uow:
        total = len(
            [r for r in uow.audit.iterate() if r.action == AuditAction.MONITORING_BATCH_RECORDED]
        )
    assert samples[("countersign_monitoring_batches_total", ())] == total
    assert samples[("countersign_monitoring_findings_open", ())] >= 1


def test_a_monitoring_alert_reaches_a_receiver_signed(world: dict[str, Any]) -> None:
    facade = world["facade"]
    receiver = Receiver()
    try:
        dispatcher = WebhookDispatcher(world["engine"], [receiver.url], SECRET)
        dispatcher.run_once()  # a new endpoint starts at the chain head
        record(facade, batch("hooked", 1, 0.1, accuracy=0.5))
        (finding,) = record(facade, batch("hooked", 2, 0.1, accuracy=0.6)).opened
        dispatcher.run_once()
        alerts = [r for r in receiver.ok() if r["event"] == "monitoring_alert"]
        assert len(alerts) == 1
        assert alerts[0]["signed"]
        body = alerts[0]["body"]
        assert body["data"]["finding_id"] == finding.id
        assert body["data"]["check"] == "accuracy"
        # Slack text escapes < > & in every value, so ">=" arrives as "&gt;=" and shows as ">=".
        assert "MONITORING ALERT hooked v1 (accuracy 0.6 breaks accuracy &gt;= 0.9)" in body["text"]
        # recording a batch is on the record but does not notify
        assert {r["event"] for r in receiver.received} == {"monitoring_alert"}
    finally:
        receiver.close()


def test_the_gate_keeps_a_holding_champion_until_the_candidate_has_a_batch(
    world: dict[str, Any],
) -> None:
    facade, registry = world["facade"], world["registry"]
    for version in ("1", "2"):
        registry.add("gated", version, author="carl", metrics={"accuracy": 0.9})
    registry.aliases[("gated", "champion")] = "1"
    record(facade, batch("gated", 1, 0.1, accuracy=0.95, version="1"))  # the champion holds
    with pytest.raises(GateFailed, match="monitoring: candidate has >= 1 scored batch"):
        facade.request_promotion("rita", "gated", "2", "champion", "newer")
    record(facade, batch("gated", 2, 0.1, accuracy=0.96, version="2"))
    request = facade.request_promotion("rita", "gated", "2", "champion", "newer, monitored")
    evidence = request.evidence_dict()
    assert evidence["monitoring"]["candidate"]["batches"] == 1
    assert evidence["monitoring"]["current"]["within_thresholds"] is True
    # A champion whose latest batch crosses its thresholds does not hold: the gate steps aside.
    registry.add("gated", "3", author="carl", metrics={"accuracy": 0.9})
    record(facade, batch("gated", 3, 0.9, accuracy=0.5, version="1"))
    other = facade.request_promotion("rita", "gated", "3", "champion", "urgent replacement")
    gate = next(g for g in other.evidence_dict()["gates"] if g["gate"].startswith("monitoring"))
    assert (gate["passed"], gate["skipped"]) == (True, True)


def test_the_shipped_policy_leaves_evidence_without_a_monitoring_section(tmp_path: Path) -> None:
    from app.settings import DEFAULT_POLICY
    from governance.evidence import capture
    from governance.policy import load_policy_file

    registry = FakeRegistry()
    registry.add("plain", "1", author="carl", metrics={"accuracy": 0.9})
    policy = load_policy_file(DEFAULT_POLICY)
    evidence = capture(
        registry, policy, policy.rule_for("plain", "champion"), model="plain", version="1",
        target="champion", target_kind="alias",
    )  # fmt: skip
    assert "monitoring" not in evidence.data
