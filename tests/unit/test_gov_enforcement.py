"""The ledger as the registry's desired state: findings, put-backs, in-flight executions, loops."""

from __future__ import annotations

import json

import pytest

from governance import service
from governance.domain import MLFLOW_WEBHOOKS, AuditAction, State
from governance.enforcement import MAX_REVERTS, enforce, ledger_view
from governance.errors import InvalidInput, NotAllowed
from tests.unit.fakes import World, make_world, open_request, vote

REVERT = "version: 1\ndefaults: {out_of_band: revert}\n"
FLAG = "version: 1\n"
HOOK = {"source": "mlflow_webhook", "delivery_id": "d-1"}


def governed_champion(world: World, version: str = "2") -> str:
    """iris champion moved to `version` by an executed request (quorum 1)."""
    request = open_request(world, version=version)
    vote(world, request, "carol")
    assert world.uow.committed.requests[request.id].state == State.EXECUTED
    return request.id


def watch(world: World) -> tuple[object, ...]:
    return enforce(world.uow, world.ctx, MLFLOW_WEBHOOKS, ("iris",), detected_by=HOOK)


def actions(world: World, *names: str) -> list[str]:
    return [r.action for r in world.uow.events() if r.action in names]


@pytest.fixture
def world() -> World:
    return make_world().with_policy(REVERT)


def test_a_move_outside_the_ledger_is_recorded_and_put_back_with_both_entries_in_order(
    world: World,
) -> None:
    governed_champion(world)
    world.registry.aliases[("iris", "champion")] = "3"  # a data scientist's client call
    found = watch(world)
    assert [(f.target, f.registry_versions, f.ledger_version) for f in found] == [
        ("champion", ("3",), "2")
    ]
    assert world.registry.aliases[("iris", "champion")] == "2"
    change, reverted = (
        world.uow.events(AuditAction.OUT_OF_BAND_CHANGE)[-1],
        world.uow.events(AuditAction.OUT_OF_BAND_REVERTED)[-1],
    )
    assert change.seq < reverted.seq
    assert json.loads(change.payload)["detected_by"] == HOOK
    done = json.loads(reverted.payload)
    assert (done["finding_seq"], done["restored_version"], done["removed_versions"]) == (
        change.seq,
        "2",
        ["3"],
    )
    assert reverted.actor == MLFLOW_WEBHOOKS


def test_the_echo_of_a_put_back_and_of_a_governed_execution_is_no_finding(world: World) -> None:
    governed_champion(world)
    before = len(world.uow.events())
    assert watch(world) == ()  # the execution's own alias and tag events
    world.registry.aliases[("iris", "champion")] = "3"
    watch(world)
    after_revert = len(world.uow.events())
    assert watch(world) == ()  # the put-back's own webhook
    assert len(world.uow.events()) == after_revert > before


def test_with_flag_the_finding_is_recorded_once_and_the_alias_stays(world: World) -> None:
    world.with_policy(FLAG)
    governed_champion(world)
    world.registry.aliases[("iris", "champion")] = "3"
    assert watch(world)[0].newly_recorded
    assert not watch(world)[0].newly_recorded
    assert world.registry.aliases[("iris", "champion")] == "3"
    assert actions(world, AuditAction.OUT_OF_BAND_CHANGE, AuditAction.OUT_OF_BAND_REVERTED) == [
        AuditAction.OUT_OF_BAND_CHANGE
    ]


def test_an_alias_that_no_request_granted_is_removed(world: World) -> None:
    # iris@champion = 1 was set before Countersign; the ledger granted nothing.
    watch(world)
    assert ("iris", "champion") not in world.registry.aliases
    assert ("delete_alias", "iris", "champion") in world.registry.calls


def test_a_move_onto_the_version_an_approved_execution_is_placing_is_no_finding(
    world: World,
) -> None:
    request = open_request(world, version="2")
    world.registry.writes_fail = True
    vote(world, request, "carol")  # approved; the write failed, a retry is due
    world.registry.writes_fail = False
    world.registry.aliases[("iris", "champion")] = "2"  # the retry's write, not yet recorded
    assert watch(world) == ()
    assert ledger_view(world.uow, ("iris",))[("iris", "alias", "champion")].holder == "2"


def test_a_put_back_during_an_execution_restores_the_version_being_executed(world: World) -> None:
    governed_champion(world, "2")
    request = open_request(world, version="3")
    world.registry.writes_fail = True
    vote(world, request, "carol")
    world.registry.writes_fail = False
    world.registry.aliases[("iris", "champion")] = "4"  # out of band, while v3 is under way
    watch(world)
    assert world.registry.aliases[("iris", "champion")] == "3"
    service.execute(world.uow, world.ctx, "rita", request.id)
    assert world.registry.aliases[("iris", "champion")] == "3"
    assert watch(world) == ()


def test_a_target_that_keeps_moving_is_left_flagged_after_the_loop_guard(world: World) -> None:
    governed_champion(world)
    for _ in range(MAX_REVERTS):
        world.registry.aliases[("iris", "champion")] = "3"
        watch(world)
        world.clock.advance(seconds=30)
    world.registry.aliases[("iris", "champion")] = "3"
    watch(world)
    assert world.registry.aliases[("iris", "champion")] == "3"
    failed = world.uow.events(AuditAction.OUT_OF_BAND_REVERT_FAILED)
    assert len(failed) == 1
    assert "left flagged" in json.loads(failed[0].payload)["detail"]
    assert len(world.uow.events(AuditAction.OUT_OF_BAND_REVERTED)) == MAX_REVERTS


def test_a_put_back_that_mlflow_refuses_is_recorded_and_the_finding_stays_open(
    world: World,
) -> None:
    governed_champion(world)
    world.registry.aliases[("iris", "champion")] = "3"
    world.registry.writes_fail = True
    watch(world)
    assert actions(world, AuditAction.OUT_OF_BAND_REVERT_FAILED) == [
        AuditAction.OUT_OF_BAND_REVERT_FAILED
    ]
    world.registry.writes_fail = False
    watch(world)  # the next event tries again
    assert world.registry.aliases[("iris", "champion")] == "2"


def test_reconcile_puts_back_only_for_an_actor_who_may_enforce(world: World) -> None:
    governed_champion(world)
    world.registry.aliases[("iris", "champion")] = "3"
    service.reconcile(world.uow, world.ctx, "frank", ("iris",))  # an auditor: flags only
    assert world.registry.aliases[("iris", "champion")] == "3"
    service.reconcile(world.uow, world.ctx, "system:cli", ("iris",))
    assert world.registry.aliases[("iris", "champion")] == "2"


def test_a_stage_moved_outside_the_ledger_gets_its_governed_holder_back(world: World) -> None:
    request = open_request(world, model="housing", version="2", target="Production")
    vote(world, request, "carol")  # housing v2 -> Production, v1 archived
    world.registry.stages[("housing", "2")] = "Staging"
    world.registry.stages[("housing", "1")] = "Production"
    enforce(world.uow, world.ctx, MLFLOW_WEBHOOKS, ("housing",), detected_by=HOOK)
    assert world.registry.stages[("housing", "2")] == "Production"
    assert world.registry.stages[("housing", "1")] == "None"


def test_an_admin_puts_a_flagged_target_back_and_nothing_else(world: World) -> None:
    world.with_policy(FLAG)
    governed_champion(world)
    world.registry.aliases[("iris", "champion")] = "3"
    watch(world)
    service.put_back(world.uow, world.ctx, "erin", "iris", "champion")
    assert world.registry.aliases[("iris", "champion")] == "2"
    with pytest.raises(InvalidInput, match="agrees with the ledger"):
        service.put_back(world.uow, world.ctx, "erin", "iris", "champion")
    with pytest.raises(NotAllowed):
        service.put_back(world.uow, world.ctx, "frank", "iris", "champion")


def test_the_policy_setting_is_validated_per_target() -> None:
    from governance.errors import PolicyError
    from governance.policy import parse_policy

    policy = parse_policy("version: 1\ntargets: {champion: {out_of_band: revert}}\n")
    assert policy.rule_for("iris", "champion").out_of_band == "revert"
    assert policy.rule_for("iris", "challenger").out_of_band == "flag"
    with pytest.raises(PolicyError, match=r"targets\.champion\.out_of_band must be flag or revert"):
        parse_policy("version: 1\ntargets: {champion: {out_of_band: undo}}\n")
