"""Break-glass: an admin promotes at once, outside the quorum, and a review follows."""

from __future__ import annotations

from governance.context import Context, Reauthentication, authorise, refuse, require_text
from governance.domain import (
    REAUTH_PASSWORD,
    AuditAction,
    BreakGlassResult,
    DecisionOutcome,
    ObjectType,
    Permission,
    RequestKind,
    State,
    role_for,
    target_kind_for,
    target_object_id,
    transition,
)
from governance.errors import GovernanceError, InvalidInput, NotAllowed
from governance.execution import apply_decision
from governance.signin import verify_password
from governance.signing import decide, reauthenticate
from governance.store_ports import UnitOfWork
from governance.workflow import capture_or_refuse, check_target, open_request, request_event


def break_glass(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    model: str,
    version: str,
    target: str,
    justification: str,
    reauth: Reauthentication,
) -> BreakGlassResult:
    """Promote at once, outside the quorum; marked as break-glass, with a follow-up review.

    The actor re-authenticates first (`reauth`: the password entered again, checked here and
    counted towards the lockout; or an OIDC sign-in the identity layer found recent), as for a
    signature. Gates are evaluated and recorded but do not block. The follow-up review request
    (kind follow_up) needs `break_glass.follow_up_quorum` approvals and moves nothing.

    Raises:
        AuthenticationFailed: The password is wrong (counts towards lockout).
        PasswordChangeRequired: The password was set by an admin and not changed since.
        NotAllowed: The actor holds no break-glass role of the policy (admin by default).
        InvalidInput: Blank justification, bad target, missing re-authentication, or the version
            already holds the target.
        UnknownModel, RegistryUnavailable.
    """
    obj = target_object_id(model, target_kind_for(target or "?"), target)
    with uow.reading():  # the slow password check runs before any lock is taken
        known = uow.users.find(actor)
    check = (
        verify_password(ctx, known, reauth.password) if reauth.method == REAUTH_PASSWORD else None
    )
    with uow:
        uow.lock_users()  # the failure counter is read and written under the write lock
        _, user = authorise(uow, ctx, actor, None, "break_glass", ObjectType.TARGET, obj)
        try:
            if user is None or not role_for(
                Permission.BREAK_GLASS, user.roles, ctx.policy.break_glass_roles
            ):
                raise NotAllowed(f"{actor} may not break glass")
            target = check_target(target, ctx)
            justification = require_text(justification, "a justification")
        except GovernanceError as exc:
            refuse(uow, ctx, actor, "break_glass", ObjectType.TARGET, obj, exc)
        where = (ObjectType.TARGET, obj)
        user = reauthenticate(uow, ctx, user, reauth, check, "break_glass", where, "break glass")
        uow.commit()  # keeps the reset of the failure counter
    evidence = capture_or_refuse(
        uow,
        ctx,
        actor,
        "break_glass",
        model=model,
        version=version,
        target=target,
        kind="break_glass",
    )
    with uow:
        if evidence.current_version == version:
            exc2 = InvalidInput(f"{model} version {version} already holds {target}")
            refuse(uow, ctx, actor, "break_glass", ObjectType.TARGET, obj, exc2)
        request = open_request(
            uow, ctx, actor, evidence, justification, kind=RequestKind.BREAK_GLASS
        )
        request = transition(request, State.APPROVED, ctx.clock.now())
        uow.requests.update(request)
        decide(
            uow,
            ctx,
            actor,
            request,
            DecisionOutcome.BREAK_GLASS,
            (actor,),
            0,
            AuditAction.BREAK_GLASS,
        )
        follow_up = open_request(
            uow,
            ctx,
            actor,
            evidence,
            f"Follow-up review of break-glass request {request.id}: {justification}",
            kind=RequestKind.FOLLOW_UP,
            related=request.id,
        )
        request_event(
            uow, actor, AuditAction.FOLLOW_UP_OPENED, follow_up, ctx.clock.now(), reviews=request.id
        )
        uow.commit()
    outcome = apply_decision(uow, ctx, actor, request.id)
    return BreakGlassResult(request=outcome.request, follow_up=follow_up, execution=outcome)
