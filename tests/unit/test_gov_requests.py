"""Opening, superseding, refreshing, cancelling and expiring promotion requests."""

from __future__ import annotations

import json

import pytest

from governance import service
from governance.domain import AuditAction, RequestKind, State
from governance.errors import (
    GateFailed,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    NotFound,
    RegistryUnavailable,
    UnknownModel,
)
from tests.unit.fakes import World, make_world, open_request


@pytest.fixture
def world() -> World:
    return make_world()


def test_a_request_captures_evidence_and_binds_it_with_the_policy_hash(world: World) -> None:
    request = open_request(world)
    assert (request.state, request.target_kind, request.kind) == ("pending", "alias", "normal")
    assert request.policy_hash == world.ctx.policy.hash
    evidence = json.loads(request.evidence)
    assert evidence["candidate"]["version"] == "2"
    assert evidence["current"]["version"] == "1"
    assert evidence["gates_passed"] is True
    created = world.uow.events(AuditAction.REQUEST_CREATED)[-1]
    assert json.loads(created.payload)["evidence_hash"] == request.evidence_hash


def test_a_stage_request_compares_with_the_current_stage_holder(world: World) -> None:
    request = open_request(world, model="housing", version="2", target="Production")
    assert request.target_kind == "stage"
    assert json.loads(request.evidence)["current"]["version"] == "1"


@pytest.mark.parametrize(
    ("actor", "model", "version", "target", "justification", "error"),
    [
        ("vic", "iris", "2", "champion", "why", NotAllowed),
        ("carol", "iris", "2", "champion", "why", NotAllowed),
        ("frank", "iris", "2", "champion", "why", NotAllowed),
        ("rita", "iris", "99", "champion", "why", UnknownModel),
        ("rita", "nosuch", "1", "champion", "why", UnknownModel),
        ("rita", "iris", "2", "champion", "   ", InvalidInput),
        ("rita", "iris", "2", "None", "why", InvalidInput),
        ("rita", "iris", "1", "champion", "why", InvalidInput),  # already holds it
        ("rita", "iris", "4", "champion", "why", GateFailed),  # accuracy drops by 0.2
    ],
)
def test_a_refused_request_is_audited_and_creates_nothing(
    world: World,
    actor: str,
    model: str,
    version: str,
    target: str,
    justification: str,
    error: type,
) -> None:
    with pytest.raises(error):
        service.request_promotion(
            world.uow, world.ctx, actor, model, version, target, justification
        )
    assert world.uow.committed.requests == {}
    refused = world.uow.events()[-1]
    assert refused.action == AuditAction.ACTION_REFUSED
    assert json.loads(refused.payload)["error"] == error.__name__


def test_an_unreachable_registry_refuses_the_request_and_says_so(world: World) -> None:
    world.registry.unavailable = True
    with pytest.raises(RegistryUnavailable):
        open_request(world)
    assert world.uow.events()[-1].action == AuditAction.ACTION_REFUSED


def test_a_newer_request_for_the_same_target_supersedes_the_pending_one(world: World) -> None:
    first = open_request(world, version="2")
    second = open_request(world, version="3")
    assert world.uow.committed.requests[first.id].state == State.SUPERSEDED
    assert world.uow.committed.requests[second.id].state == State.PENDING
    superseded = world.uow.events(AuditAction.REQUEST_SUPERSEDED)[-1]
    assert json.loads(superseded.payload)["superseded_by"] == second.id


def test_requests_for_other_targets_stay_pending_side_by_side(world: World) -> None:
    first = open_request(world, target="champion")
    second = open_request(world, target="challenger")
    states = {r.id: r.state for r in world.uow.committed.requests.values()}
    assert states == {first.id: "pending", second.id: "pending"}


def test_only_the_requester_may_cancel(world: World) -> None:
    request = open_request(world)
    with pytest.raises(NotAllowed, match="only the requester"):
        service.cancel(world.uow, world.ctx, "dan", request.id)
    assert service.cancel(world.uow, world.ctx, "rita", request.id).state == State.CANCELLED
    with pytest.raises(InvalidTransition):
        service.cancel(world.uow, world.ctx, "rita", request.id)


def test_cancelling_an_unknown_request_is_refused(world: World) -> None:
    with pytest.raises(NotFound):
        service.cancel(world.uow, world.ctx, "rita", "nope")


def test_pending_requests_expire_after_the_policy_period(world: World) -> None:
    request = open_request(world)
    assert service.expire_due(world.uow, world.ctx, "system:scheduler") == ()
    world.clock.advance(days=7)
    expired = service.expire_due(world.uow, world.ctx, "system:scheduler")
    assert [r.id for r in expired] == [request.id]
    assert world.uow.committed.requests[request.id].state == State.EXPIRED
    assert service.expire_due(world.uow, world.ctx, "system:scheduler") == ()
    assert len(world.uow.events(AuditAction.REQUEST_EXPIRED)) == 1


def test_refreshing_unchanged_evidence_keeps_the_request(world: World) -> None:
    request = open_request(world)
    assert service.refresh_evidence(world.uow, world.ctx, "rita", request.id) == request


def test_refreshing_changed_evidence_opens_a_new_request_that_supersedes(world: World) -> None:
    request = open_request(world)
    world.evidence.drift[("iris", "2")] = {"share_drifted": 0.1}
    fresh = service.refresh_evidence(world.uow, world.ctx, "rita", request.id)
    assert fresh.id != request.id
    assert (fresh.related_request_id, fresh.requester) == (request.id, "rita")
    assert fresh.evidence_hash != request.evidence_hash
    assert world.uow.committed.requests[request.id].state == State.SUPERSEDED
    assert world.uow.events(AuditAction.EVIDENCE_REFRESHED)


def test_a_viewer_cannot_refresh_someone_elses_request(world: World) -> None:
    request = open_request(world)
    with pytest.raises(NotAllowed):
        service.refresh_evidence(world.uow, world.ctx, "vic", request.id)


def test_listing_and_reading_requests_needs_only_the_view_permission(world: World) -> None:
    request = open_request(world)
    assert service.list_requests(world.uow, world.ctx, "vic") == (request,)
    assert service.list_requests(world.uow, world.ctx, "vic", state="executed") == ()
    details = service.get_request(world.uow, world.ctx, "vic", request.id)
    assert (details.quorum, details.approvals, details.votes) == (2, 0, ())
    assert details.request.kind == RequestKind.NORMAL
    with pytest.raises(NotAllowed):
        service.list_requests(world.uow, world.ctx, "ghost")


def test_refreshing_an_unknown_request_is_refused_and_audited(world: World) -> None:
    with pytest.raises(NotFound):
        service.refresh_evidence(world.uow, world.ctx, "rita", "nope")
    assert world.uow.events()[-1].action == AuditAction.ACTION_REFUSED
