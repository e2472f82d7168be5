"""Signing: approvals and rejections with quorum, and break-glass promotions."""

from __future__ import annotations

from dataclasses import replace

from governance.context import (
    Context,
    Reauthentication,
    authorise,
    load_principal,
    refuse,
    require_text,
)
from governance.domain import (
    ADMIN,
    ADMIN_MAY_NOT_SIGN,
    REAUTH_PASSWORD,
    AuditAction,
    Decision,
    DecisionOutcome,
    ObjectType,
    PromotionRequest,
    RequestKind,
    SignOffResult,
    State,
    User,
    Vote,
    VoteDecision,
    signing_role,
    transition,
    vote_meaning,
)
from governance.errors import (
    DuplicateVote,
    GateFailed,
    GovernanceError,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    PasswordChangeRequired,
    StaleEvidence,
)
from governance.evidence import Evidence
from governance.execution import apply_decision
from governance.policy import Rule
from governance.signin import PasswordCheck, record_password_check, verify_password
from governance.store_ports import UnitOfWork
from governance.workflow import capture_or_refuse, request_event


def sign_off(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    request_id: str,
    *,
    decision: str,
    comment: str,
    reauth: Reauthentication,
    content_hash: str,
) -> SignOffResult:
    """Approve or reject a pending request as an electronic signature.

    The actor re-authenticates (`reauth`), must hold an approver role of the policy for this
    target and, for an approval, must be neither the requester nor the author of the version's
    source run (separation of duties). Approvals re-capture the evidence and re-check the gates.
    The vote and the quorum count happen under the request's lock; one rejection rejects. When
    the quorum is reached the decision is committed first and then executed (see `execute`).

    Args:
        decision: "approve" or "reject".
        comment: Mandatory.
        content_hash: The request content the signer saw (`PromotionRequest.content_hash`).

    Returns:
        The result; `already_recorded` True when this approver had voted already (no change).

    Raises:
        AuthenticationFailed: Re-authentication failed (counts towards lockout).
        NotAllowed: No approver role for this target, or separation of duties.
        InvalidInput: Blank comment, unknown decision or re-authentication method.
        InvalidTransition: The request is not pending (expired requests are expired first).
        StaleEvidence: The content or evidence changed since it was read or requested.
        GateFailed: A gate no longer passes.
        NotFound, UnknownModel, RegistryUnavailable.
    """
    attempted = f"sign_off:{decision}"
    problem: GovernanceError | None = None
    # What the slow parts need, read without a lock; all of it is read again under the lock.
    with uow.reading():
        try:
            _, signer = load_principal(uow, actor, ctx.policy.signer_roles())
            vote_decision = VoteDecision(decision)
            request = uow.requests.get(request_id)
        except ValueError:
            problem = InvalidInput(f"bad decision {decision!r}")
        except GovernanceError as exc:
            problem = exc
    if problem is not None:
        with uow:
            refuse(uow, ctx, actor, attempted, ObjectType.REQUEST, request_id, problem)
    # The slow parts (argon2, registry reads) run outside the locking transaction.
    check = (
        verify_password(ctx, signer, reauth.password) if reauth.method == REAUTH_PASSWORD else None
    )
    fresh: Evidence | None = None
    if (
        vote_decision is VoteDecision.APPROVE
        and request.kind != RequestKind.FOLLOW_UP
        and request.state == State.PENDING
    ):
        fresh = capture_or_refuse(
            uow,
            ctx,
            actor,
            attempted,
            model=request.model,
            version=request.version,
            target=request.target,
            kind=request.kind,
        )
    with uow:
        # The signer's failure counter is read under the write lock, so that a wrong password
        # racing another one still counts towards the lockout.
        uow.lock_users()
        _, user = authorise(uow, ctx, actor, None, attempted, ObjectType.REQUEST, request_id)
        if user is None:
            nobody = NotAllowed("a signature needs a named person")
            refuse(uow, ctx, actor, attempted, ObjectType.REQUEST, request_id, nobody)
        user = reauthenticate(
            uow, ctx, user, reauth, check, attempted, (ObjectType.REQUEST, request_id)
        )
        request = uow.lock_request(request_id)
        rule = ctx.policy.rule_for(request.model, request.target, request.kind)
        # Read once under the lock: no other vote on this request can land before the commit.
        votes = uow.votes.for_request(request_id)
        existing = next((v for v in votes if v.approver == actor), None)
        if existing is not None:
            uow.commit()  # keeps the reset of the user's failure counter
            return _repeat(request, existing, votes, rule)
        now = ctx.clock.now()
        if request.state == State.PENDING and request.expires_at <= now:
            request = transition(request, State.EXPIRED, now)
            uow.requests.update(request)
            request_event(uow, actor, AuditAction.REQUEST_EXPIRED, request, now)
        role = signing_role(user.roles, rule.approver_roles)
        problem = _problem(
            request, user, role, rule, vote_decision, comment, content_hash, fresh, ctx
        )
        if problem is not None:
            refuse(uow, ctx, actor, attempted, ObjectType.REQUEST, request_id, problem)
        vote = Vote(
            request_id=request_id,
            approver=actor,
            decision=vote_decision.value,
            comment=comment.strip(),
            role_at_signing=role or "",
            signed_at=now,
            meaning=vote_meaning(vote_decision, request),
            reauth_method=reauth.method,
            content_hash=request.content_hash,
            signer_name=user.display_name or user.name,
        )
        try:
            uow.votes.add(vote)
        except DuplicateVote:
            uow.rollback()  # a concurrent double submit won the race: answer as a repeat
            votes = uow.votes.for_request(request_id)
            mine = next((v for v in votes if v.approver == actor), vote)
            return _repeat(request, mine, votes, rule)
        request_event(uow, actor, AuditAction.VOTE_RECORDED, request, now, **_vote_payload(vote))
        votes = tuple(sorted((*votes, vote), key=lambda v: v.signed_at))  # the stored order
        request, approvers = _count(uow, ctx, actor, request, rule, vote_decision, votes)
        uow.commit()
    result = SignOffResult(request, vote, False, len(approvers), rule.quorum)
    if request.state == State.APPROVED and request.kind != RequestKind.FOLLOW_UP:
        outcome = apply_decision(uow, ctx, actor, request_id, decided=(request, approvers))
        result = replace(result, request=outcome.request, execution=outcome)
    return result


def reauthenticate(
    uow: UnitOfWork,
    ctx: Context,
    user: User,
    reauth: Reauthentication,
    check: PasswordCheck | None,
    attempted: str,
    target: tuple[str, str],
    purpose: str = "signing",
) -> User:
    """Apply the re-authentication of a signature or a break-glass (inside the transaction).

    A password check counts towards the lockout like a sign-in; a password an admin set
    (`must_change_password`) proves nothing until its owner has changed it.

    Args:
        check: The password check made before the transaction, or None for an attested method.
        target: The audit object (type, id) of the attempted action, for a refusal.
        purpose: What a failed check was for, in its `login_failed` event.
    """
    if not (reauth.method or "").strip():
        exc = InvalidInput(f"{purpose} needs re-authentication")
        refuse(uow, ctx, user.name, attempted, *target, exc)
    if check is None:
        return user
    user = record_password_check(uow, ctx, user, check, purpose)
    if user.must_change_password:
        refuse(uow, ctx, user.name, attempted, *target, PasswordChangeRequired())
    return user


def _problem(
    request: PromotionRequest,
    user: User,
    role: str | None,
    rule: Rule,
    decision: VoteDecision,
    comment: str,
    content_hash: str,
    fresh: Evidence | None,
    ctx: Context,
) -> GovernanceError | None:
    """The first reason this vote may not be recorded, or None (checked in this order)."""
    if request.state != State.PENDING:
        return InvalidTransition(f"request {request.id} is {request.state}: it cannot be signed")
    if role is None:
        roles = ", ".join(rule.approver_roles)
        return NotAllowed(
            f"{user.name} does not hold an approver role for {request.target} ({roles})"
        )
    if user.has_role(ADMIN) and not rule.admins_may_sign:
        return NotAllowed(ADMIN_MAY_NOT_SIGN)
    if decision is VoteDecision.APPROVE and rule.separation_of_duties:
        if user.name == request.requester:
            return NotAllowed("separation of duties: the requester may not approve the request")
        author = str(request.evidence_dict().get("candidate", {}).get("run_author") or "")
        if author and user.name == author:
            return NotAllowed(
                "separation of duties: the author of the version's source run may not approve it"
            )
    try:
        require_text(comment, "a comment")
    except InvalidInput as exc:
        return exc
    if content_hash != request.content_hash:
        return StaleEvidence("the request changed since you read it: reload it before signing")
    if fresh is not None:
        if fresh.hash != request.evidence_hash or ctx.policy.hash != request.policy_hash:
            return StaleEvidence(
                "the evidence or policy changed since the request was made: refresh it first"
            )
        if not fresh.gates_passed:
            return GateFailed("policy gates failed: " + "; ".join(fresh.failed_gates))
    return None


def _count(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    request: PromotionRequest,
    rule: Rule,
    decision: VoteDecision,
    votes: tuple[Vote, ...],
) -> tuple[PromotionRequest, tuple[str, ...]]:
    """Close the request when this vote decides it (inside the locked transaction).

    Args:
        votes: Every vote on the request, this one included, read under the lock.

    Returns:
        The request (closed or not) and every approver so far.
    """
    approvers = tuple(v.approver for v in votes if v.decision == VoteDecision.APPROVE)
    now = ctx.clock.now()
    if decision is VoteDecision.REJECT:
        outcome, state, action = (
            DecisionOutcome.REJECTED,
            State.REJECTED,
            AuditAction.REQUEST_REJECTED,
        )
    elif len(approvers) >= rule.quorum:
        outcome, state, action = (
            DecisionOutcome.APPROVED,
            State.APPROVED,
            AuditAction.REQUEST_APPROVED,
        )
    else:
        return request, approvers
    request = transition(request, state, now)
    uow.requests.update(request)
    signers = (actor,) if decision is VoteDecision.REJECT else approvers
    decide(uow, ctx, actor, request, outcome, signers, rule.quorum, action)
    return request, approvers


def decide(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    request: PromotionRequest,
    outcome: str,
    signers: tuple[str, ...],
    quorum: int,
    action: str,
) -> None:
    decision = Decision(
        request_id=request.id,
        outcome=outcome,
        decided_at=ctx.clock.now(),
        decided_by=actor,
        approvers=signers,
        quorum=quorum,
        policy_hash=ctx.policy.hash,
        content_hash=request.content_hash,
    )
    uow.decisions.add(decision)
    request_event(
        uow,
        actor,
        action,
        request,
        decision.decided_at,
        outcome=outcome,
        approvers=list(signers),
        quorum=quorum,
        policy_hash=ctx.policy.hash,
        content_hash=request.content_hash,
    )


def _repeat(
    request: PromotionRequest, vote: Vote, votes: tuple[Vote, ...], rule: Rule
) -> SignOffResult:
    approvals = sum(1 for v in votes if v.decision == VoteDecision.APPROVE)
    return SignOffResult(request, vote, True, approvals, rule.quorum)


def _vote_payload(vote: Vote) -> dict[str, object]:
    return {
        "decision": vote.decision,
        "comment": vote.comment,
        "role_at_signing": vote.role_at_signing,
        "signer_name": vote.signer_name,
        "meaning": vote.meaning,
        "reauth_method": vote.reauth_method,
        "content_hash": vote.content_hash,
        "signed_at": vote.signed_at.isoformat(),
    }
