"""The demo's governance history on a copy of the real demo store and a real SQLite ledger.

The story is written in two parts (the first four steps with the monitoring job's evenings
until then, then `seed_demo_governance` resumes the rest), as after an interrupted seed;
`seed-demo --if-missing` then finds nothing to do. The tests read the result through the
facade, the read models, the monitoring service and MLflow's own client.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.batch_monitoring.service import BatchMonitoring
from app.bootstrap import build_batch_monitoring, build_governance, upgrade_governance_db
from app.demo_history import DAILY_MONITORING, DEMO_STORY, seed_demo_governance, seed_demo_history
from app.demo_history.clock import Timeline, on
from app.demo_history.ledger import read_ledger
from app.demo_history.story import Story, StoryStep
from app.demo_users import DEMO_USERS, seed_demo_users
from app.facade import GovernanceFacade
from app.governance_views import audit_events, inbox
from app.history_views import target_history
from app.mlflow_gateway.demo_batches import MODELS, batch_path, days_ago
from app.settings import Settings
from governance.domain import (
    CLI_OPERATOR,
    SCHEDULER,
    RequestDetails,
    RequestKind,
    State,
    VoteDecision,
)
from tests.e2e.identity_env import cli

_fixtures = pytest.importorskip("tests.fixtures_mlflow")
demo_data_dir = _fixtures.demo_data_dir
DIABETES, TUMOR = "diabetes-progression", "tumor-classifier"


def env_for(root: Path) -> dict[str, str]:
    return {
        "COUNTERSIGN_DATA_DIR": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_REGISTRY_URI": f"sqlite:///{root / 'mlflow.db'}",
        "COUNTERSIGN_DB_URL": f"sqlite:///{root / 'governance.db'}",
        "COUNTERSIGN_AUTH": "local",
        "COUNTERSIGN_DEMO": "1",
    }


@dataclass(frozen=True)
class Seeded:
    env: dict[str, str]
    settings: Settings
    now: datetime
    output: list[str]
    warnings: list[str]


@pytest.fixture(scope="module")
def seeded(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    root = tmp_path_factory.mktemp("demo-history")
    shutil.copy(demo_data_dir / "mlflow.db", root / "mlflow.db")  # artifacts stay shared
    env = env_for(root)
    settings = Settings.from_env(env=env)
    upgrade_governance_db(settings)
    now = datetime.now(UTC)
    output: list[str] = []
    warnings: list[str] = []
    interrupted = DEMO_STORY[4].when(Timeline(now))
    evenings = tuple(job for job in DAILY_MONITORING if job.when(Timeline(now)) < interrupted)
    done = seed_demo_history(
        settings,
        DEMO_STORY[:4],
        jobs=evenings,
        now=now,
        echo=output.append,
        warn=warnings.append,
    )
    assert done, warnings
    done = seed_demo_governance(settings, now=now, echo=output.append, warn=warnings.append)
    assert done, warnings
    assert not warnings
    return Seeded(env, settings, now, output, warnings)


@pytest.fixture
def facade(seeded: Seeded) -> Iterator[GovernanceFacade]:
    built = build_governance(seeded.settings)
    yield built
    built.dispose()


@pytest.fixture
def monitoring(seeded: Seeded, facade: GovernanceFacade) -> BatchMonitoring:
    return build_batch_monitoring(seeded.settings, facade)


def one(
    facade: GovernanceFacade, model: str, version: str, target: str, kind: str = "normal"
) -> RequestDetails:
    found = [
        r
        for r in facade.list_requests(CLI_OPERATOR, model=model)
        if (r.version, r.target, r.kind) == (version, target, kind)
    ]
    assert len(found) == 1, found
    return facade.get_request(CLI_OPERATOR, found[0].id)


def test_every_step_is_written_once_at_its_moment_in_the_past(
    seeded: Seeded, facade: GovernanceFacade
) -> None:
    written = [line for line in seeded.output if line.startswith("demo history: ")]
    steps = [f"demo history: {step.title}" for step in DEMO_STORY]
    evenings = [f"demo history: {job.title}" for job in DAILY_MONITORING]
    # nothing was moved: every moment of the story came after the one before it
    assert len(written) == len(steps) + len(evenings)
    assert [line for line in written if line in steps] == steps
    assert [line for line in written if line in evenings] == evenings
    requests = facade.list_requests(CLI_OPERATOR)
    assert len(requests) == sum(len(step.requests) for step in DEMO_STORY) == 8
    timeline = Timeline(seeded.now)
    for step in DEMO_STORY:
        for (model, version, target, kind), state in step.requests:
            details = one(facade, model, version, target, kind)
            assert details.request.state == state, step.title
            planned = step.when(timeline)
            # each step signs in first: its request follows its moment by a second or two
            assert planned <= details.request.created_at <= planned + timedelta(seconds=10)


def test_the_chain_verifies_and_its_timestamps_rise_with_seq_over_weeks(
    seeded: Seeded, facade: GovernanceFacade
) -> None:
    events = sorted(audit_events(facade, CLI_OPERATOR, limit=None), key=lambda e: e.seq)
    stamps = [datetime.strptime(e.ts, "%Y-%m-%dT%H:%M:%S.%fZ") for e in events]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] >= timedelta(days=19)
    assert stamps[-1] < seeded.now.replace(tzinfo=None)
    assert events[0].action == "policy_loaded"
    result = cli(seeded.env, "audit", "verify")
    assert "audit chain verified" in result.stdout


def test_erin_and_frank_each_find_exactly_the_pending_request_with_its_drift_gate(
    facade: GovernanceFacade,
) -> None:
    pending = one(facade, DIABETES, "3", "champion")
    for approver in ("erin", "frank"):
        found = inbox(facade, approver, ("approver",))
        assert [d.request.id for d, _ in found] == [pending.request.id]
        assert found[0][1].may_approve
    assert pending.request.requester == "alice"
    assert (pending.quorum, pending.approvals, pending.votes) == (2, 0, ())
    gates = {g["gate"]: g for g in pending.request.evidence_dict()["gates"]}
    drift = gates["drift share <= 0.5"]
    assert drift["passed"]
    assert not drift["skipped"]
    assert drift["detail"].startswith("drift share 0.36")
    assert "36% of the columns drift" in pending.request.justification
    assert pending.request.expires_at > datetime.now(UTC) + timedelta(days=6)


def test_the_executed_promotion_has_two_password_signatures_and_one_execution(
    facade: GovernanceFacade,
) -> None:
    done = one(facade, DIABETES, "2", "Production")
    assert [(v.approver, v.decision) for v in done.votes] == [
        ("erin", VoteDecision.APPROVE),
        ("frank", VoteDecision.APPROVE),
    ]
    assert all(v.comment and v.reauth_method == "password" for v in done.votes)
    assert all(v.content_hash == done.request.content_hash for v in done.votes)
    assert done.decision is not None
    assert done.decision.approvers == ("erin", "frank")
    [execution] = done.executions
    assert (execution.outcome, execution.previous_holder) == ("succeeded", "1")


def test_the_rejected_and_expired_requests_keep_their_comments_and_reasons(
    facade: GovernanceFacade,
) -> None:
    rejected = one(facade, DIABETES, "3", "Production")
    assert rejected.request.state == State.REJECTED
    assert [(v.approver, v.decision) for v in rejected.votes] == [
        ("frank", VoteDecision.APPROVE),
        ("erin", VoteDecision.REJECT),
    ]
    assert "Staging first" in rejected.votes[1].comment
    assert rejected.executions == ()
    expired = one(facade, DIABETES, "2", "champion")
    assert (expired.request.state, expired.votes) == (State.EXPIRED, ())
    assert "stages to aliases" in expired.request.justification
    ends = audit_events(facade, CLI_OPERATOR, action="request_expired", limit=None)
    assert [(e.actor, e.object_id) for e in ends] == [(SCHEDULER, expired.request.id)]
    assert ends[0].ts > expired.request.expires_at.strftime("%Y-%m-%dT%H:%M:%S")


def test_the_break_glass_was_reviewed_by_both_approvers(facade: GovernanceFacade) -> None:
    glass = one(facade, TUMOR, "2", "champion", RequestKind.BREAK_GLASS)
    review = one(facade, TUMOR, "2", "champion", RequestKind.FOLLOW_UP)
    assert (glass.request.state, glass.executions[0].previous_holder) == (State.EXECUTED, "1")
    assert review.request.state == State.APPROVED
    assert [v.approver for v in review.votes] == ["erin", "frank"]


def test_the_sign_in_notes_tell_what_the_seeded_history_holds(facade: GovernanceFacade) -> None:
    mine = [r.state for r in facade.list_requests(CLI_OPERATOR) if r.requester == "alice"]
    assert sorted(mine) == sorted(["executed"] * 3 + ["rejected", "expired", "pending"])
    notes = {a.username: a.finds for a in DEMO_USERS}
    assert "your six requests (three executed, one rejected, one expired, one" in notes["alice"]
    assert "one request waiting for your signature" in notes["erin"]
    assert "diabetes-progression v3 → champion" in notes["erin"]
    assert "break-glass promotion of tumor-classifier v2 → champion" in notes["admin"]
    assert "out-of-band move of its champion that you put back" in notes["admin"]
    for who in ("erin", "admin"):
        assert "an open drift alert on" in notes[who]
    assert "three weeks of daily batches" in notes["frank"]


def test_mlflow_holds_the_seeded_state_each_target_set_by_the_ledger(
    seeded: Seeded, facade: GovernanceFacade
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(seeded.settings.tracking_uri, seeded.settings.registry_uri)
    tumor = client.get_registered_model(TUMOR)
    assert {k: str(v) for k, v in tumor.aliases.items()} == {"champion": "2", "challenger": "3"}
    versions = client.search_model_versions(f"name='{DIABETES}'")
    assert {str(v.version): v.current_stage for v in versions} == {
        "1": "Archived",
        "2": "Production",
        "3": "Staging",
    }
    tagged = {
        (DIABETES, "2"): one(facade, DIABETES, "2", "Production").request.id,
        (DIABETES, "3"): one(facade, DIABETES, "3", "Staging").request.id,
        (TUMOR, "2"): one(facade, TUMOR, "2", "champion", RequestKind.BREAK_GLASS).request.id,
        (TUMOR, "3"): one(facade, TUMOR, "3", "challenger").request.id,
    }
    for (model, version), request_id in tagged.items():
        tags = client.get_model_version(model, version).tags
        assert tags["countersign.request_id"] == request_id


def test_the_out_of_band_move_was_flagged_then_put_back_by_admin(facade: GovernanceFacade) -> None:
    found = audit_events(facade, CLI_OPERATOR, model=TUMOR, limit=None)
    moves = [
        (e.actor, e.action, json.loads(e.payload).get("registry_versions"))
        for e in sorted(found, key=lambda e: e.seq)
        if e.action.startswith("out_of_band")
    ]
    assert moves[0] == (CLI_OPERATOR, "out_of_band_change", ["3"])
    assert moves[1][:2] == ("admin", "out_of_band_reverted")
    assert len(moves) == 2


def test_reconcile_on_the_fresh_demo_finds_nothing_out_of_band(facade: GovernanceFacade) -> None:
    assert facade.reconcile(CLI_OPERATOR) == ()


def test_tumor_classifiers_challenger_starts_with_its_first_execution(
    facade: GovernanceFacade,
) -> None:
    # the alias was unset until frank's signature: no "before Countersign knew" holder
    history = target_history(facade, CLI_OPERATOR, TUMOR)
    challenger = [(t.version, t.source) for t in history.tenures if t.target == "challenger"]
    assert challenger == [("3", "request")]
    champion = [(t.version, t.source) for t in history.tenures if t.target == "champion"]
    assert champion[0] == ("1", "before_countersign")  # seeded outside the ledger, replaced


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_the_daily_job_scored_each_version_in_production_or_shadow_every_evening(
    seeded: Seeded, facade: GovernanceFacade, monitoring: BatchMonitoring
) -> None:
    timeline = Timeline(seeded.now)
    total = 0
    for spec in MODELS:
        for index, numbers in spec.batches.items():
            version = str(index)
            run_id = facade.context.registry.get_version(spec.name, version).run_id
            batches = monitoring.history(CLI_OPERATOR, spec.name, version)
            assert [b.source for b in batches] == [
                f"runs:/{run_id}/{batch_path(n)}" for n in numbers
            ]
            for number, batch in zip(numbers, batches, strict=True):
                day = days_ago(number)
                assert as_utc(batch.as_of) == timeline.on(day, "00:00")
                evening = on(day, "20:00")(timeline)
                assert evening <= as_utc(batch.recorded_at) < evening + timedelta(minutes=1)
                assert batch.recorded_by == SCHEDULER
                assert (batch.label_column, batch.prediction_column) == ("target", "prediction")
                wanted = {"accuracy", "roc_auc"} if spec.name == TUMOR else {"rmse", "r2"}
                assert wanted <= set(batch.metrics())
            total += len(batches)
    assert total == sum(len(n) for spec in MODELS for n in spec.batches.values()) == 43
    recorded = audit_events(facade, CLI_OPERATOR, action="monitoring_batch_recorded", limit=None)
    assert len(recorded) == total


def test_each_batch_was_scored_for_a_version_holding_a_target_that_evening(
    facade: GovernanceFacade, monitoring: BatchMonitoring
) -> None:
    for spec in MODELS:
        history = facade.history(CLI_OPERATOR, spec.name)
        for index in spec.batches:
            for batch in monitoring.history(CLI_OPERATOR, spec.name, str(index)):
                held = {t.version for t in history.at(as_utc(batch.recorded_at))}
                assert batch.version in held, (spec.name, batch.version, batch.recorded_at)


def test_one_drift_alert_is_open_on_the_tumor_champion(
    seeded: Seeded, facade: GovernanceFacade, monitoring: BatchMonitoring
) -> None:
    ever = monitoring.findings(CLI_OPERATOR, only_open=False)
    assert [(f.model, f.version, f.check, f.is_open) for f in ever] == [
        (TUMOR, "2", "drift_share", True)
    ]
    alert = ever[0]
    assert alert.consecutive == 3
    assert alert.value > 0.5
    assert alert.opened_by == SCHEDULER
    assert timedelta(0) < seeded.now - as_utc(alert.opened_at) < timedelta(days=7)
    [entry] = audit_events(facade, CLI_OPERATOR, action="monitoring_alert", limit=None)
    assert json.loads(entry.payload)["finding_id"] == alert.id
    # the thresholds are the shipped policy's, for any model
    thresholds = monitoring.thresholds(TUMOR)
    assert thresholds is not None
    assert (thresholds.pattern, thresholds.consecutive) == ("*", 3)
    # the challenger crosses too, on too few batches yet; diabetes stays under a half
    challenger = monitoring.history(CLI_OPERATOR, TUMOR, "3")
    assert len(challenger) == 2
    assert all(b.share_drifted > 0.5 for b in challenger)
    for version in ("1", "2", "3"):
        assert all(
            b.share_drifted < 0.5 for b in monitoring.history(CLI_OPERATOR, DIABETES, version)
        )


def test_the_alerts_batch_is_read_again_from_its_run_for_the_evidently_report(
    monitoring: BatchMonitoring,
) -> None:
    from app.batch_monitoring import timeline

    [alert] = monitoring.findings(CLI_OPERATOR)
    batch = monitoring.batch(CLI_OPERATOR, alert.batch_id)
    frame = monitoring.batch_data(batch)  # refuses a source that is gone or changed
    assert len(frame) == batch.rows
    assert set(monitoring.reference_frame(TUMOR, "2").columns) <= set(frame.columns)
    champion = monitoring.history(CLI_OPERATOR, TUMOR, "2")
    drawn = timeline.timeline({"2": champion})
    assert drawn["batch_id"].nunique() == len(champion) == 13
    assert {"drift_share", "accuracy", "roc_auc"} <= set(drawn["metric"])
    assert monitoring.baseline(TUMOR, "2", "target", "prediction") is not None


def test_a_second_seed_demo_adds_nothing(seeded: Seeded) -> None:
    versions = tuple((s.name, str(i)) for s in MODELS for i in s.batches)
    before = read_ledger(seeded.settings, versions=versions)
    assert len(before.batches) == 43
    result = cli(seeded.env, "seed-demo", "--if-missing")
    assert "nothing to train" in result.stdout
    assert "demo history exists: nothing to do" in result.stdout
    after = read_ledger(seeded.settings, versions=versions)
    assert (after.head_seq, after.head_at) == (before.head_seq, before.head_at)
    assert (after.requests, after.batches) == (before.requests, before.batches)


# --- a governance database that is not new is left alone (no MLflow store needed) ------------


def ledger_settings(root: Path) -> Settings:
    # root/mlflow.db does not exist: a story that touched MLflow would fail at once
    settings = Settings.from_env(env=env_for(root))
    upgrade_governance_db(settings)
    return settings


def test_a_database_with_requests_of_its_own_is_left_alone(tmp_path: Path) -> None:
    from tests.unit.fakes import FakeRegistry

    settings = ledger_settings(tmp_path)
    registry = FakeRegistry()
    registry.add("credit-risk", "1", author="dora", metrics={"accuracy": 0.9})
    own = build_governance(settings, registry=registry)
    try:
        own.create_user(CLI_OPERATOR, "rita", ["requester"], "rita-pass-1234")
        own.request_promotion("rita", "credit-risk", "1", "challenger", "first")
    finally:
        own.dispose()
    before = read_ledger(settings)
    output: list[str] = []
    assert not seed_demo_governance(settings, echo=output.append, warn=output.append)
    assert "holds requests of its own; left as it is" in output[-1]
    after = read_ledger(settings)
    assert after.requests == before.requests
    assert after.users == frozenset(a.username for a in DEMO_USERS)  # the users, as before


def test_history_is_never_written_before_existing_entries(tmp_path: Path) -> None:
    settings = ledger_settings(tmp_path)
    seed_demo_users(settings)  # entries of today: a story in the past would break the order
    before = read_ledger(settings)
    warnings: list[str] = []
    assert not seed_demo_governance(settings, echo=lambda _: None, warn=warnings.append)
    assert "demo history not written" in warnings[0]
    assert "seed a new governance database" in warnings[0]
    after = read_ledger(settings)
    assert (after.head_seq, after.requests) == (before.head_seq, ())


def test_without_a_schema_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings.from_env(env=env_for(tmp_path))
    warnings: list[str] = []
    assert not seed_demo_governance(settings, echo=lambda _: None, warn=warnings.append)
    assert len(warnings) == 1
    assert "db upgrade" in warnings[0]


# --- jobs run when the story's clock passes them (a real ledger, no MLflow store) ------------

PASS = "a long demo pass phrase"


def creating(name: str, *, then: tuple[int, str] | None = None, disable: bool = False) -> Any:
    """A step or job that creates user `name` (and, later in the story, `name`-later)."""

    def run(story: Story) -> None:
        story.facade.create_user(CLI_OPERATOR, name, ["viewer"], PASS)
        if disable:
            story.facade.disable_user(CLI_OPERATOR, name)
        if then is not None:
            story.at(on(*then))  # a step whose own moments last days (a late signature)
            story.facade.create_user(CLI_OPERATOR, f"{name}-later", ["viewer"], PASS)

    return run


STEPS = (
    StoryStep("a", on(5, "09:00"), creating("step-a", then=(3, "09:00"), disable=True),
              events=("user_disabled",)),
    StoryStep("b", on(2, "09:00"), creating("step-b"), events=("user_disabled",)),
)  # fmt: skip
JOBS = (
    StoryStep("job 4", on(4, "20:00"), creating("job-4"), done=lambda _ledger: False),
    StoryStep("job 1", on(1, "20:00"), creating("job-1"), done=lambda _ledger: False),
)


def created(settings: Settings) -> list[tuple[str, str]]:
    facade = build_governance(settings)
    try:
        found = audit_events(facade, CLI_OPERATOR, action="user_created", limit=None)
    finally:
        facade.dispose()
    return [(e.object_id, e.ts) for e in sorted(found, key=lambda e: e.seq)]


def test_a_job_runs_when_the_storys_clock_passes_it_even_inside_a_step(tmp_path: Path) -> None:
    settings = ledger_settings(tmp_path)
    now = datetime.now(UTC)
    lines: list[str] = []
    assert seed_demo_history(settings, STEPS, jobs=JOBS, now=now, echo=lines.append)
    order = created(settings)
    assert [name for name, _ in order] == ["step-a", "job-4", "step-a-later", "step-b", "job-1"]
    stamps = [ts for _, ts in order]
    assert stamps == sorted(stamps)
    job4 = on(4, "20:00")(Timeline(now)).strftime("%Y-%m-%dT%H:%M")
    assert order[1][1].startswith(job4)  # at its own moment: nothing was moved
    assert not [line for line in lines if "moved after" in line]


def test_jobs_added_to_a_written_story_run_after_its_newest_entry(tmp_path: Path) -> None:
    # a demo written before its daily job existed: the job's evenings are written after the
    # ledger's newest entry, so the chain's timestamps keep rising
    settings = ledger_settings(tmp_path)
    now = datetime.now(UTC)
    assert seed_demo_history(settings, STEPS, now=now, echo=lambda _: None)
    head = read_ledger(settings).head_at
    assert head is not None
    lines: list[str] = []
    assert seed_demo_history(settings, STEPS, jobs=JOBS, now=now, echo=lines.append)
    assert lines == ["demo history: job 4", "demo history: job 1"]
    order = created(settings)
    assert [name for name, _ in order] == ["step-a", "step-a-later", "step-b", "job-4", "job-1"]
    stamps = [ts for _, ts in order]
    assert stamps == sorted(stamps)
    assert stamps[3] > head.strftime("%Y-%m-%dT%H:%M:%S")
    assert "audit chain verified" in cli(env_for(tmp_path), "audit", "verify").stdout
