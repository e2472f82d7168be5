"""Sign-off: roles, separation of duties, quorum, repeats, stale evidence, re-authentication."""

from __future__ import annotations

import json

import pytest

from governance import service
from governance.context import Reauthentication
from governance.domain import CLI_OPERATOR, AuditAction, State
from governance.errors import (
    AuthenticationFailed,
    DuplicateVote,
    GovernanceError,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    StaleEvidence,
)
from tests.unit.fakes import World, make_world, open_request, reauth, vote


@pytest.fixture
def world() -> World:
    return make_world()


def test_two_approvals_reach_the_champion_quorum_and_execute(world: World) -> None:
    request = open_request(world)
    first = vote(world, request, "carol")
    assert (first.request.state, first.approvals, first.quorum) == ("pending", 1, 2)
    assert first.message == "approve recorded (1 of 2 approvals)"
    second = vote(world, request, "dave")
    assert second.request.state == State.EXECUTED
    assert second.execution is not None
    assert world.registry.aliases[("iris", "champion")] == "2"
    decision = world.uow.committed.decisions[request.id]
    assert (decision.outcome, decision.approvers) == ("approved", ("carol", "dave"))
    assert decision.policy_hash == world.ctx.policy.hash


def test_one_approval_is_enough_for_challenger(world: World) -> None:
    request = open_request(world, target="challenger")
    assert vote(world, request, "carol").request.state == State.EXECUTED


def test_a_vote_records_the_manifestation_of_the_signature(world: World) -> None:
    request = open_request(world)
    signed = vote(world, request, "carol", comment="metrics hold up").vote
    assert (signed.signer_name, signed.role_at_signing, signed.reauth_method) == (
        "Carol",
        "approver",
        "password",
    )
    assert signed.meaning.startswith("Approval of moving iris version 2 to alias champion")
    assert signed.content_hash == request.content_hash
    assert signed.signed_at.tzinfo is not None
    payload = json.loads(world.uow.events(AuditAction.VOTE_RECORDED)[-1].payload)
    assert payload["comment"] == "metrics hold up"


@pytest.mark.parametrize(
    ("actor", "version", "error", "message"),
    [
        ("vic", "2", NotAllowed, "does not hold an approver role"),
        ("frank", "2", NotAllowed, "does not hold an approver role"),
        ("erin", "2", NotAllowed, "does not hold an approver role"),
        ("dan", "2", NotAllowed, "does not hold an approver role"),
        ("bob", "3", NotAllowed, "author of the version's source run"),
        ("ghost", "2", NotAllowed, "not an active user"),
    ],
)
def test_a_signer_without_the_right_or_with_a_conflict_is_refused_and_audited(
    world: World, actor: str, version: str, error: type, message: str
) -> None:
    request = open_request(world, version=version)
    with pytest.raises(error, match=message):
        vote(world, request, actor)
    assert world.uow.committed.votes == {}
    assert world.uow.events()[-1].action == AuditAction.ACTION_REFUSED


def test_the_requester_may_not_approve_their_own_request(world: World) -> None:
    world.uow.committed.users["rita"] = world.uow.committed.users["rita"].__class__(
        **{**vars(world.uow.committed.users["rita"]), "roles": ("requester", "approver")}
    )
    request = open_request(world)
    with pytest.raises(NotAllowed, match="the requester may not approve"):
        vote(world, request, "rita")


def test_separation_of_duties_can_be_switched_off_by_the_policy(world: World) -> None:
    world.with_policy("version: 1\ndefaults: {separation_of_duties: false}")
    request = open_request(world, version="3")
    assert vote(world, request, "bob").request.state == State.EXECUTED


def test_a_repeat_vote_is_answered_already_recorded_and_adds_nothing(world: World) -> None:
    request = open_request(world)
    vote(world, request, "carol")
    events = len(world.uow.events())
    again = vote(world, request, "carol", decision="reject", comment="changed my mind")
    assert again.already_recorded
    assert again.message == "already recorded"
    assert again.vote.decision == "approve"
    assert len(world.uow.events()) == events
    assert len(world.uow.committed.votes) == 1


def test_a_double_submit_that_loses_the_race_is_a_repeat_not_an_error(world: World) -> None:
    request = open_request(world)
    real_read = world.uow.votes.__class__.for_request
    calls = {"n": 0}

    def stale_read(self: object, request_id: str) -> object:
        calls["n"] += 1  # the first read misses the vote the other submit just committed
        return () if calls["n"] == 1 else real_read(self, request_id)  # type: ignore[arg-type]

    vote(world, request, "carol")
    world.uow.votes.__class__.for_request = stale_read  # type: ignore[method-assign]
    try:
        again = vote(world, request, "carol")
    finally:
        world.uow.votes.__class__.for_request = real_read  # type: ignore[method-assign]
    assert calls["n"] == 2  # the insert was refused, then the votes were read again
    assert again.already_recorded
    assert again.vote.decision == "approve"
    assert len(world.uow.committed.votes) == 1


def test_the_vote_repository_refuses_a_second_vote_by_the_same_approver(world: World) -> None:
    request = open_request(world)
    signed = vote(world, request, "carol").vote
    with world.uow, pytest.raises(DuplicateVote):
        world.uow.votes.add(signed, audit_seq=1)


def test_one_rejection_rejects_the_request(world: World) -> None:
    request = open_request(world)
    vote(world, request, "carol")
    result = vote(world, request, "dave", decision="reject", comment="drift too high")
    assert result.request.state == State.REJECTED
    assert world.uow.committed.decisions[request.id].outcome == "rejected"
    with pytest.raises(InvalidTransition):
        vote(world, request, "bob")
    assert ("iris", "champion") in world.registry.aliases
    assert world.registry.aliases[("iris", "champion")] == "1"


@pytest.mark.parametrize(
    ("decision", "comment", "error"),
    [("approve", "  ", InvalidInput), ("maybe", "ok", InvalidInput), ("reject", "", InvalidInput)],
)
def test_a_vote_needs_a_decision_and_a_comment(
    world: World, decision: str, comment: str, error: type
) -> None:
    request = open_request(world)
    with pytest.raises(error):
        vote(world, request, "carol", decision=decision, comment=comment)
    assert world.uow.committed.votes == {}


def test_a_vote_on_content_the_signer_did_not_see_is_stale(world: World) -> None:
    request = open_request(world)
    with pytest.raises(StaleEvidence, match="reload"):
        vote(world, request, "carol", content_hash="0" * 64)


def test_changed_evidence_at_approval_requires_a_refresh(world: World) -> None:
    request = open_request(world)
    world.evidence.drift[("iris", "2")] = {"share_drifted": 0.2}
    with pytest.raises(StaleEvidence, match="refresh"):
        vote(world, request, "carol")
    fresh = service.refresh_evidence(world.uow, world.ctx, "rita", request.id)
    assert vote(world, fresh, "carol").approvals == 1


def test_a_new_champion_since_the_request_makes_its_evidence_stale(world: World) -> None:
    request = open_request(world)
    world.registry.aliases[("iris", "champion")] = "3"
    with pytest.raises(StaleEvidence):
        vote(world, request, "carol")


def test_a_changed_policy_makes_the_request_stale(world: World) -> None:
    request = open_request(world)
    world.with_policy("version: 1\ntargets: {champion: {quorum: 1}}")
    with pytest.raises(StaleEvidence):
        vote(world, request, "carol")


def test_a_rejection_does_not_need_fresh_evidence(world: World) -> None:
    request = open_request(world)
    world.registry.unavailable = True
    result = vote(world, request, "carol", decision="reject", comment="no")
    assert result.request.state == State.REJECTED


def test_a_wrong_password_at_signing_refuses_the_vote_and_counts_towards_lockout(
    world: World,
) -> None:
    request = open_request(world)
    with pytest.raises(AuthenticationFailed):
        service.sign_off(
            world.uow,
            world.ctx,
            "carol",
            request.id,
            decision="approve",
            comment="ok",
            reauth=reauth("wrong"),
            content_hash=request.content_hash,
        )
    assert world.uow.committed.votes == {}
    assert world.uow.committed.users["carol"].failed_logins == 1


def test_a_recent_oidc_login_is_recorded_as_the_reauthentication(world: World) -> None:
    request = open_request(world)
    result = service.sign_off(
        world.uow,
        world.ctx,
        "carol",
        request.id,
        decision="approve",
        comment="ok",
        reauth=Reauthentication("oidc-recent-login"),
        content_hash=request.content_hash,
    )
    assert result.vote.reauth_method == "oidc-recent-login"


def test_signing_without_any_reauthentication_is_refused(world: World) -> None:
    request = open_request(world)
    with pytest.raises(InvalidInput):
        service.sign_off(
            world.uow,
            world.ctx,
            "carol",
            request.id,
            decision="approve",
            comment="ok",
            reauth=Reauthentication(""),
            content_hash=request.content_hash,
        )


def test_signing_an_overdue_request_expires_it_instead(world: World) -> None:
    request = open_request(world)
    world.clock.advance(days=8)
    with pytest.raises(InvalidTransition, match="expired"):
        vote(world, request, "carol")
    assert world.uow.committed.requests[request.id].state == State.EXPIRED
    assert world.uow.events(AuditAction.REQUEST_EXPIRED)


def test_a_database_failure_mid_vote_leaves_no_partial_state(world: World) -> None:
    request = open_request(world)
    before = len(world.uow.events())
    world.uow.fail_next_commit = True
    with pytest.raises(GovernanceError, match="connection was lost"):
        vote(world, request, "carol")
    assert world.uow.committed.votes == {}
    assert len(world.uow.events()) == before
    assert vote(world, request, "carol").approvals == 1


def test_a_custom_policy_role_signs_where_the_policy_names_it(world: World) -> None:
    world.with_policy("version: 1\ntargets: {champion: {quorum: 1, approver_roles: [risk]}}")
    service.create_user(world.uow, world.ctx, CLI_OPERATOR, "rachel", ["risk"], "long enough pass")
    request = open_request(world)
    with pytest.raises(NotAllowed):
        vote(world, request, "carol")
    result = service.sign_off(
        world.uow,
        world.ctx,
        "rachel",
        request.id,
        decision="approve",
        comment="risk ok",
        reauth=reauth("long enough pass"),
        content_hash=request.content_hash,
    )
    assert (result.vote.role_at_signing, result.request.state) == ("risk", "executed")


def test_the_vote_event_is_stamped_when_the_vote_is_cast(world: World) -> None:
    request = open_request(world)
    world.clock.advance(hours=3)
    vote(world, request, "carol")
    assert world.uow.events(AuditAction.VOTE_RECORDED)[-1].ts == "2026-11-01T12:00:00.000000Z"
