"""Execution, retries, break-glass, rollback, reconcile and audit verification."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from governance import service
from governance.domain import AuditAction, RequestKind, State
from governance.errors import InvalidInput, InvalidTransition, NotAllowed
from tests.unit.fakes import World, make_world, open_request, reauth, vote


@pytest.fixture
def world() -> World:
    return make_world()


def _approved_while_registry_down(world: World) -> str:
    request = open_request(world)
    vote(world, request, "carol")
    world.registry.writes_fail = True
    vote(world, request, "dave")
    return request.id


def test_execution_sets_the_alias_and_writes_provenance_tags(world: World) -> None:
    request = open_request(world)
    vote(world, request, "carol")
    vote(world, request, "dave")
    tags = world.registry.tags[("iris", "2")]
    assert tags["countersign.request_id"] == request.id
    assert tags["countersign.approvers"] == "carol,dave"
    assert tags["countersign.policy_hash"] == world.ctx.policy.hash
    execution = world.uow.committed.executions[-1]
    assert (execution.outcome, execution.previous_holder, execution.attempt) == (
        "succeeded",
        "1",
        1,
    )


def test_a_stage_execution_archives_the_previous_holder(world: World) -> None:
    request = open_request(world, model="housing", version="2", target="Production")
    vote(world, request, "carol")
    vote(world, request, "dave")
    assert world.registry.stages[("housing", "2")] == "Production"
    assert world.registry.stages[("housing", "1")] == "Archived"


def test_a_stage_execution_keeps_the_previous_holder_when_the_policy_says_so(
    world: World,
) -> None:
    world.with_policy("version: 1\ntargets: {Production: {archive_existing: false}}")
    request = open_request(world, model="housing", version="2", target="Production")
    vote(world, request, "carol")
    assert world.registry.stages[("housing", "1")] == "Production"


def test_an_unreachable_registry_leaves_execution_failed_and_a_retry_executes_once(
    world: World,
) -> None:
    request_id = _approved_while_registry_down(world)
    assert world.uow.committed.requests[request_id].state == State.EXECUTION_FAILED
    assert world.uow.committed.decisions[request_id].outcome == "approved"
    with pytest.raises(NotAllowed):  # a viewer cannot even retry
        service.execute(world.uow, world.ctx, "vic", request_id)
    failed_again = service.execute(world.uow, world.ctx, "rita", request_id)
    assert failed_again.request.state == State.EXECUTION_FAILED
    world.registry.writes_fail = False
    done = service.execute(world.uow, world.ctx, "rita", request_id)
    assert (done.request.state, done.executed_now) == ("executed", True)
    again = service.execute(world.uow, world.ctx, "system:cli", request_id)
    assert (again.request.state, again.executed_now, again.execution) == ("executed", False, None)
    assert len(world.uow.events(AuditAction.EXECUTION_SUCCEEDED)) == 1
    assert len(world.uow.events(AuditAction.EXECUTION_FAILED)) == 2
    assert [e.attempt for e in world.uow.committed.executions] == [1, 2, 3]
    assert world.registry.aliases[("iris", "champion")] == "2"


def test_a_retry_after_a_partly_applied_attempt_keeps_the_true_previous_holder(
    world: World,
) -> None:
    request = open_request(world)
    vote(world, request, "carol")
    real = world.registry.set_version_tags

    def broken(*args: object, **kwargs: object) -> None:
        world.registry.unavailable = True
        real(*args, **kwargs)  # type: ignore[arg-type]

    world.registry.set_version_tags = broken  # type: ignore[method-assign]
    vote(world, request, "dave")  # alias moved, tags failed
    world.registry.set_version_tags = real  # type: ignore[method-assign]
    world.registry.unavailable = False
    service.execute(world.uow, world.ctx, "rita", request.id)
    assert world.uow.committed.executions[-1].previous_holder == "1"


@pytest.mark.parametrize("state", ["pending", "rejected", "cancelled"])
def test_only_approved_requests_execute(world: World, state: str) -> None:
    request = open_request(world)
    if state == "rejected":
        vote(world, request, "carol", decision="reject", comment="no")
    if state == "cancelled":
        service.cancel(world.uow, world.ctx, "rita", request.id)
    with pytest.raises(InvalidTransition):
        service.execute(world.uow, world.ctx, "rita", request.id)
    assert world.uow.events()[-1].action == AuditAction.ACTION_REFUSED


def test_break_glass_promotes_at_once_and_opens_a_follow_up_review(world: World) -> None:
    result = service.break_glass(
        world.uow, world.ctx, "erin", "iris", "3", "champion", "outage: v1 is broken", reauth()
    )
    assert result.request.state == State.EXECUTED
    assert result.request.kind == RequestKind.BREAK_GLASS
    assert world.registry.aliases[("iris", "champion")] == "3"
    assert world.uow.committed.decisions[result.request.id].outcome == "break_glass"
    follow_up = result.follow_up
    assert (follow_up.kind, follow_up.state, follow_up.related_request_id) == (
        "follow_up",
        "pending",
        result.request.id,
    )
    assert world.uow.events(AuditAction.BREAK_GLASS)
    assert world.uow.events(AuditAction.FOLLOW_UP_OPENED)
    with pytest.raises(NotAllowed, match="approver role"):
        vote(world, follow_up, "erin")
    vote(world, follow_up, "carol")
    reviewed = vote(world, follow_up, "dave")
    assert (reviewed.request.state, reviewed.execution) == ("approved", None)
    assert len(world.uow.events(AuditAction.EXECUTION_SUCCEEDED)) == 1


def test_break_glass_supersedes_a_pending_request_but_not_a_follow_up(world: World) -> None:
    pending = open_request(world)
    first = service.break_glass(
        world.uow, world.ctx, "erin", "iris", "3", "champion", "urgent", reauth()
    )
    second = service.break_glass(
        world.uow, world.ctx, "erin", "iris", "2", "champion", "again", reauth()
    )
    states = world.uow.committed.requests
    assert states[pending.id].state == State.SUPERSEDED
    assert states[first.follow_up.id].state == State.PENDING
    assert states[second.follow_up.id].state == State.PENDING


@pytest.mark.parametrize(
    ("actor", "justification", "error"),
    [("carol", "urgent", NotAllowed), ("rita", "urgent", NotAllowed), ("erin", " ", InvalidInput)],
)
def test_break_glass_needs_an_admin_and_a_justification(
    world: World, actor: str, justification: str, error: type
) -> None:
    with pytest.raises(error):
        service.break_glass(
            world.uow, world.ctx, actor, "iris", "3", "champion", justification, reauth()
        )
    assert world.registry.aliases[("iris", "champion")] == "1"
    assert world.uow.events()[-1].action == AuditAction.ACTION_REFUSED


def test_a_rollback_restores_the_previous_holder_with_its_own_quorum(world: World) -> None:
    request = open_request(world)
    vote(world, request, "carol")
    vote(world, request, "dave")
    rollback = service.request_rollback(
        world.uow, world.ctx, "rita", "iris", "champion", "v2 misbehaves in production"
    )
    assert (rollback.kind, rollback.version, rollback.related_request_id) == (
        "rollback",
        "1",
        request.id,
    )
    assert world.uow.events(AuditAction.ROLLBACK_REQUESTED)
    assert vote(world, rollback, "carol").request.state == State.EXECUTED  # quorum 1
    assert world.registry.aliases[("iris", "champion")] == "1"


def test_a_rollback_without_an_earlier_holder_is_refused(world: World) -> None:
    with pytest.raises(InvalidInput, match="nothing to roll back"):
        service.request_rollback(world.uow, world.ctx, "rita", "iris", "champion", "oops")
    with pytest.raises(NotAllowed):
        service.request_rollback(world.uow, world.ctx, "vic", "iris", "champion", "oops")


def test_reconcile_records_each_out_of_band_change_once_and_its_clearing(world: World) -> None:
    request = open_request(world, target="challenger")
    vote(world, request, "carol")
    first = service.reconcile(world.uow, world.ctx, "frank")
    # the demo aliases and stages set outside the ledger are findings
    keys = {(f.model, f.target): f.newly_recorded for f in first}
    assert keys == {("iris", "champion"): True, ("housing", "Production"): True}
    assert all(not f.newly_recorded for f in service.reconcile(world.uow, world.ctx, "frank"))
    assert len(world.uow.events(AuditAction.OUT_OF_BAND_CHANGE)) == 2
    world.registry.aliases[("iris", "challenger")] = "3"  # moved behind the ledger's back
    moved = [f for f in service.reconcile(world.uow, world.ctx, "erin") if f.target == "challenger"]
    assert (moved[0].registry_versions, moved[0].ledger_version) == (("3",), "2")
    assert len(world.uow.events(AuditAction.OUT_OF_BAND_CHANGE)) == 3
    world.registry.aliases[("iris", "challenger")] = "2"
    service.reconcile(world.uow, world.ctx, "erin")
    cleared = world.uow.events(AuditAction.OUT_OF_BAND_CLEARED)
    assert [json.loads(c.payload)["target"] for c in cleared] == ["challenger"]


def test_reconcile_needs_the_permission(world: World) -> None:
    with pytest.raises(NotAllowed):
        service.reconcile(world.uow, world.ctx, "carol")


def test_verify_audit_passes_on_an_honest_chain_and_names_the_first_tampered_seq(
    world: World,
) -> None:
    request = open_request(world)
    vote(world, request, "carol")
    assert service.verify_audit(world.uow, world.ctx, "frank").ok
    chain = world.uow.committed.audit
    chain[1] = replace(chain[1], actor="mallory")
    result = service.verify_audit(world.uow, world.ctx, "frank")
    assert (result.ok, result.first_broken_seq) == (False, 2)
    with pytest.raises(NotAllowed):
        service.verify_audit(world.uow, world.ctx, "carol")


def test_the_policy_load_is_recorded_once_per_hash_and_a_bad_policy_is_recorded_too(
    world: World, tmp_path: object
) -> None:
    from pathlib import Path

    from governance.errors import PolicyError
    from tests.unit.fakes import DEFAULT_POLICY

    service.load_policy(world.uow, world.clock, DEFAULT_POLICY, "system:cli")
    service.load_policy(world.uow, world.clock, DEFAULT_POLICY, "system:cli")
    assert len(world.uow.events(AuditAction.POLICY_LOADED)) == 1
    bad = Path(str(tmp_path)) / "bad.yaml"
    bad.write_text("version: 1\ntargets: {champion: {quorum: 0}}\n")
    with pytest.raises(PolicyError, match=r"bad\.yaml: targets\.champion\.quorum"):
        service.load_policy(world.uow, world.clock, bad, "system:cli")
    assert world.uow.events()[-1].action == AuditAction.POLICY_REJECTED
    assert service.verify_audit(world.uow, world.ctx, "frank").ok
