"""The monitoring figures and the webhook outbox store on SQLite and PostgreSQL.

These are the governance-side halves of the Prometheus exporter and the webhook dispatcher
(both in app/, which imports no SQLAlchemy): the workflow runs through the real facade on a
migrated database, and the figures and outbox rows are read back as our own dataclasses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.bootstrap import build_governance
from app.facade import GovernanceFacade
from app.settings import Settings
from governance.db import Engine, make_engine, upgrade
from governance.domain import CLI_OPERATOR
from governance.metrics_queries import read_figures
from governance.webhook_outbox import SqlWebhookOutbox
from tests.unit.fakes import PASSWORD, FakeEvidenceSource, FakeHasher, FakeRegistry

POLICY = """
version: 1
defaults: {approver_roles: [approver], quorum: 1, expires_after: 7d}
targets:
  champion: {quorum: 2}
"""


@dataclass
class World:
    engine: Engine
    facade: GovernanceFacade
    registry: FakeRegistry
    evidence: FakeEvidenceSource


@pytest.fixture
def world(empty_db_url: str, tmp_path: Path) -> Iterator[World]:
    engine = make_engine(empty_db_url)
    upgrade(engine)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    env = {
        "COUNTERSIGN_DB_URL": empty_db_url,
        "COUNTERSIGN_DATA_DIR": str(tmp_path),
        "COUNTERSIGN_POLICY": str(policy),
    }
    settings = Settings.from_env(env, secrets_path=tmp_path / "none.toml")
    registry = FakeRegistry()
    for version in ("1", "2", "3"):
        registry.add("iris", version, author="carl", metrics={"accuracy": 0.9})
    registry.aliases[("iris", "champion")] = "1"
    evidence = FakeEvidenceSource()
    facade = build_governance(settings, registry=registry, hasher=FakeHasher(), evidence=evidence)
    for name, role in (("rita", "requester"), ("ann", "approver"), ("ben", "approver")):
        facade.create_user(CLI_OPERATOR, name, [role], PASSWORD)
    yield World(engine, facade, registry, evidence)
    facade.dispose()
    engine.dispose()


def promote(facade: GovernanceFacade, version: str, target: str) -> str:
    request = facade.request_promotion("rita", "iris", version, target, "reviewed offline")
    for approver in ("ann", "ben"):
        facade.sign_off(
            approver,
            request.id,
            decision="approve",
            comment="ok",
            content_hash=request.content_hash,
            password=PASSWORD,
        )
    return request.id


def test_an_empty_ledger_reads_as_zeros(world: World) -> None:
    figures = read_figures(world.engine)
    assert figures.requests_by_state == ()
    assert figures.pending_created_at == ()
    assert (figures.out_of_band_changes, figures.out_of_band_open) == (0, 0)
    assert figures.drift_shares == ()
    assert figures.quality == ()
    assert (figures.monitoring_batches, figures.monitoring_findings_open) == (0, 0)
    assert figures.webhooks_by_status == ()


def test_the_figures_follow_the_workflow(world: World) -> None:
    world.evidence.drift[("iris", "2")] = {"share_drifted": 0.25}
    promote(world.facade, "2", "champion")  # executed: champion now holds v2
    world.evidence.drift[("iris", "2")] = {"share_drifted": 0.4}
    world.facade.request_promotion("rita", "iris", "2", "staging", "newer evidence")
    world.facade.request_promotion("rita", "iris", "3", "challenger", "no evidence")
    world.registry.aliases[("iris", "champion")] = "1"  # moved behind the ledger's back
    world.facade.reconcile(CLI_OPERATOR)
    opened = read_figures(world.engine)
    world.registry.aliases[("iris", "champion")] = "2"  # put back: the finding is cleared
    world.facade.reconcile(CLI_OPERATOR)
    cleared = read_figures(world.engine)

    assert dict(opened.requests_by_state) == {"executed": 1, "pending": 2}
    assert len(opened.pending_created_at) == 2
    assert all(t.tzinfo is not None for t in opened.pending_created_at)
    assert dict(opened.decisions_by_outcome) == {"approved": 1}
    assert dict(opened.executions_by_outcome) == {"succeeded": 1}
    assert opened.drift_shares == ()  # request evidence no longer feeds the drift series
    assert (opened.out_of_band_changes, opened.out_of_band_open) == (1, 1)
    assert (cleared.out_of_band_changes, cleared.out_of_band_open) == (1, 0)


def test_the_drift_and_quality_figures_are_the_latest_monitoring_batchs(world: World) -> None:
    from governance.monitoring_service import record_batch
    from tests.integration.test_monitoring_store import batch

    facade = world.facade
    for item in (batch("iris", 4, 0.1, accuracy=0.93), batch("iris", 2, 0.6, accuracy=0.7)):
        record_batch(facade.store.unit_of_work(), facade.context, CLI_OPERATOR, item)
    figures = read_figures(world.engine)
    assert figures.drift_shares == (("iris", "1", 0.1),)  # day 4, though day 2 came later
    assert figures.quality == (("iris", "1", "accuracy", 0.93),)
    assert figures.monitoring_batches == 2


def test_the_outbox_queues_what_the_caller_names_and_retries_when_told(world: World) -> None:
    outbox = SqlWebhookOutbox(world.engine)
    now = datetime.now(UTC)
    rules = {"notified": {"vote_recorded"}, "delivery_id": lambda key, seq: f"{key}-{seq}"}
    assert outbox.enqueue("k", now, **rules) == 0  # a new endpoint starts at the chain head
    promote(world.facade, "2", "champion")
    assert outbox.enqueue("k", now, **rules) == 2  # the two votes, nothing else
    assert outbox.enqueue("k", now, **rules) == 0  # the cursor moved past every entry

    first, second = outbox.claim("k", now, timedelta(minutes=1))
    assert outbox.claim("k", now, timedelta(minutes=1)) == []  # both are leased
    assert (first.delivery_id, first.attempts) == (f"k-{first.seq}", 0)
    assert first.event.action == "vote_recorded"
    assert json.loads(first.event.payload)["decision"] == "approve"
    assert first.event.ts.endswith("Z")
    assert len(first.event.entry_hash) == 64

    retry = outbox.failed(
        "k", first.seq, now, "HTTP 500", max_attempts=3, retry_after=lambda n: timedelta(hours=n)
    )
    assert retry is False
    outbox.delivered("k", second.seq, now)
    assert outbox.counts() == {"delivered": 1, "pending": 1}
    assert outbox.claim("k", now + timedelta(minutes=59), timedelta(minutes=1)) == []
    (again,) = outbox.claim("k", now + timedelta(hours=1), timedelta(minutes=1))
    assert (again.seq, again.delivery_id, again.attempts) == (first.seq, first.delivery_id, 1)
    gave_up = outbox.failed(
        "k", first.seq, now, "HTTP 500", max_attempts=2, retry_after=lambda n: timedelta(0)
    )
    assert gave_up is True
    assert outbox.claim("k", now + timedelta(days=1), timedelta(minutes=1)) == []
    assert dict(read_figures(world.engine).webhooks_by_status) == {"delivered": 1, "failed": 1}
    assert outbox.prune(now + timedelta(seconds=1)) == 2
    assert outbox.counts() == {}
