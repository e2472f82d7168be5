"""Read models for the governance pages: evidence previews, who may sign, feeds and findings.

Plain Python over the governance facade (no Streamlit; `app.deps` wraps these for the pages).
Nothing here changes state: every mutation goes through one `GovernanceFacade` method. Reads are
still authorised against the matrix, because a page's guard is a courtesy, not the control.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from app.entities import ActivityEvent, EvidencePreview, OutOfBandFlag, SigningEligibility
from governance.audit import AuditRecord
from governance.context import load_principal
from governance.domain import (
    ADMIN,
    ADMIN_MAY_NOT_SIGN,
    AuditAction,
    ObjectType,
    Permission,
    RequestDetails,
    RequestKind,
    State,
    VoteDecision,
    signing_role,
    target_kind_for,
)
from governance.evidence import capture

if TYPE_CHECKING:
    from app.facade import GovernanceFacade

# What the activity feeds show: the life of requests and of registry targets.
FEED_OBJECTS = (ObjectType.REQUEST, ObjectType.TARGET)


def _require(facade: GovernanceFacade, actor: str, permission: Permission) -> None:
    with facade.store.unit_of_work(read_only=True) as uow:
        principal, _ = load_principal(uow, actor, facade.policy.signer_roles())
    principal.require(permission)


def data_version(facade: GovernanceFacade) -> int:
    """The audit chain's head sequence number (0 for an empty log).

    Every change of the governance state (requests, votes, decisions, executions, users,
    out-of-band findings and put-backs, monitoring batches and findings) appends an audit entry
    in the same transaction, so a read of that state stays true while this number stays.
    """
    with facade.store.unit_of_work(read_only=True) as uow:
        head = uow.audit.head()
    return head.seq if head is not None else 0


def preview_evidence(
    facade: GovernanceFacade, actor: str, model: str, version: str, target: str
) -> EvidencePreview:
    """The evidence a promotion request would capture now (nothing is recorded).

    Raises:
        NotAllowed: The actor may not view.
        UnknownModel: No such model or version.
        RegistryUnavailable: The registry cannot be reached.
    """
    _require(facade, actor, Permission.VIEW)
    ctx = facade.context
    rule = ctx.policy.rule_for(model, target)
    evidence = capture(
        ctx.registry,
        ctx.policy,
        rule,
        model=model,
        version=str(version),
        target=target,
        target_kind=target_kind_for(target),
        source=ctx.evidence,
        monitoring=ctx.monitoring,
    )
    return EvidencePreview(
        data=dict(evidence.data),
        hash=evidence.hash,
        policy_hash=ctx.policy.hash,
        quorum=rule.quorum,
        approver_roles=rule.approver_roles,
        separation_of_duties=rule.separation_of_duties,
        gates_passed=evidence.gates_passed,
    )


def eligibility(
    facade: GovernanceFacade, actor: str, roles: tuple[str, ...], details: RequestDetails
) -> SigningEligibility:
    """Whether `actor` may sign the request, and why (the service decides again at signing)."""
    req = details.request
    rule = facade.policy.rule_for(req.model, req.target, req.kind)
    role = signing_role(roles, rule.approver_roles)
    voted = next((v for v in details.votes if v.approver == actor), None)
    wanted = " or ".join(rule.approver_roles)
    if voted is not None:
        return SigningEligibility(
            False,
            False,
            role,
            f"already recorded: you signed this request ({voted.decision})",
            True,
        )
    if req.state != State.PENDING:
        return SigningEligibility(False, False, role, f"the request is {req.state}")
    if role is None:
        return SigningEligibility(False, False, None, f"signing needs the role {wanted}")
    if ADMIN in roles and not rule.admins_may_sign:
        return SigningEligibility(False, False, role, ADMIN_MAY_NOT_SIGN)
    if rule.separation_of_duties and actor == req.requester:
        return SigningEligibility(
            True, False, role, "separation of duties: you requested it, so you may only reject it"
        )
    author = str(req.evidence_dict().get("candidate", {}).get("run_author") or "")
    if rule.separation_of_duties and author and actor == author:
        return SigningEligibility(
            True,
            False,
            role,
            "separation of duties: you authored the version's run, so you may only reject it",
        )
    duties = (
        f"you are neither the requester ({req.requester}) nor the run author ({author or '-'})"
        if rule.separation_of_duties
        else "the policy does not separate duties for this target"
    )
    return SigningEligibility(
        True,
        True,
        role,
        f"you hold the role {role}, which the policy names for {req.target} "
        f"(quorum {rule.quorum}), and {duties}",
    )


def inbox(
    facade: GovernanceFacade, actor: str, roles: tuple[str, ...]
) -> list[tuple[RequestDetails, SigningEligibility]]:
    """The pending requests `actor` may still sign (approve or reject), oldest first."""
    out = []
    for req in reversed(facade.list_requests(actor, state=State.PENDING)):
        details = facade.get_request(actor, req.id)
        verdict = eligibility(facade, actor, roles, details)
        if verdict.may_sign:
            out.append((details, verdict))
    return out


# --- the audit log as feeds ---------------------------------------------------------------------


def _payload(rec: AuditRecord) -> dict[str, Any]:
    try:
        data = json.loads(rec.payload)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def summarise(rec: AuditRecord, payload: dict[str, Any] | None = None) -> str:
    """One plain sentence for an audit entry."""
    p = _payload(rec) if payload is None else payload
    what = rec.action.replace("_", " ")
    if rec.action == AuditAction.REQUEST_CREATED:
        kind = "" if p.get("kind") in (None, RequestKind.NORMAL) else f" ({p['kind']})"
        return (
            f"{rec.actor} requested {p.get('model')} v{p.get('version')} → {p.get('target')}"
            f"{kind}: {p.get('justification', '')}"
        )
    if rec.action == AuditAction.VOTE_RECORDED:
        verb = "approved" if p.get("decision") == VoteDecision.APPROVE else "rejected"
        return f"{rec.actor} {verb} request {rec.object_id}: {p.get('comment', '')}"
    if rec.action in (AuditAction.EXECUTION_SUCCEEDED, AuditAction.EXECUTION_FAILED):
        detail = f" ({p['detail']})" if p.get("detail") else ""
        moved = f": {p.get('model')} v{p.get('version')} → {p.get('target')}" if p else ""
        return f"{what} for request {rec.object_id}{moved}{detail}"
    if rec.action == AuditAction.BREAK_GLASS:
        return f"BREAK-GLASS by {rec.actor} on request {rec.object_id}"
    if rec.action == AuditAction.OUT_OF_BAND_CHANGE:
        found = ", ".join(f"v{v}" for v in p.get("registry_versions") or []) or "nobody"
        ledger = f"v{p['ledger_version']}" if p.get("ledger_version") else "nobody"
        return (
            f"OUT-OF-BAND: {p.get('target_kind')} {p.get('target')} is held by {found} in "
            f"MLflow, the ledger says {ledger}"
        )
    if rec.action == AuditAction.OUT_OF_BAND_REVERTED:
        moved = ", ".join(f"v{v}" for v in p.get("registry_versions") or []) or "nobody"
        back = f"v{p['restored_version']}" if p.get("restored_version") else "nobody (removed)"
        return (
            f"PUT BACK: {p.get('target_kind')} {p.get('target')} had been moved to {moved} "
            f"outside Countersign; restored to {back} (finding #{p.get('finding_seq')})"
        )
    if rec.action == AuditAction.OUT_OF_BAND_REVERT_FAILED:
        return f"could not put back {p.get('target_kind')} {p.get('target')}: {p.get('detail', '')}"
    if rec.action == AuditAction.MLFLOW_DELIVERY_REFUSED:
        return f"refused {p.get('count', 1)} MLflow webhook delivery(ies): {p.get('reason', '')}"
    if rec.action == AuditAction.MONITORING_ALERT:
        return (
            f"MONITORING ALERT: {p.get('model')} v{p.get('version')} {p.get('check')} "
            f"{p.get('value')} breaks {p.get('limit')} ({p.get('consecutive_batches')} batch(es))"
        )
    if rec.action == AuditAction.MONITORING_BATCH_RECORDED:
        return (
            f"{rec.actor} recorded batch {p.get('batch_id')} of {p.get('model')} "
            f"v{p.get('version')}: drift share {p.get('share_drifted')}"
        )
    if rec.action == AuditAction.MONITORING_FINDING_CLOSED:
        return (
            f"{rec.actor} closed monitoring finding {p.get('finding_id')} "
            f"({p.get('check')}): {p.get('comment', '')}"
        )
    if rec.action == AuditAction.ACTION_REFUSED:
        return f"refused {p.get('attempted', '')} by {rec.actor}: {p.get('reason', '')}"
    return f"{what} ({rec.object_type} {rec.object_id}) by {rec.actor}"


def _model_of(rec: AuditRecord, payload: dict[str, Any], request_models: dict[str, str]) -> str:
    if rec.object_type == ObjectType.REQUEST:
        return request_models.get(rec.object_id, str(payload.get("model") or ""))
    if rec.object_type == ObjectType.TARGET and "/" in rec.object_id:
        return rec.object_id.rsplit("/", 2)[0]
    if rec.object_type == ObjectType.MODEL_VERSION and "/" in rec.object_id:
        return rec.object_id.rsplit("/", 1)[0]
    return str(payload.get("model") or "")


def _events(records: Iterable[AuditRecord], request_models: dict[str, str]) -> Iterator[Any]:
    for rec in records:
        p = _payload(rec)
        yield ActivityEvent(
            seq=rec.seq,
            ts=rec.ts,
            actor=rec.actor,
            action=rec.action,
            object_type=rec.object_type,
            object_id=rec.object_id,
            model=_model_of(rec, p, request_models),
            summary=summarise(rec, p),
            payload=rec.payload,
            entry_hash=rec.entry_hash,
        )


def audit_events(
    facade: GovernanceFacade,
    actor: str,
    *,
    model: str = "",
    who: str = "",
    action: str = "",
    since: str = "",
    until: str = "",
    limit: int = 500,
    feed_only: bool = False,
) -> list[ActivityEvent]:
    """Audit entries newest first, filtered; `since`/`until` compare with the hashed timestamps.

    The audit log needs read_audit; `feed_only` (request and target events, for the activity
    feeds every signed-in user sees) needs view.

    Raises:
        NotAllowed: The actor lacks the permission.
    """
    _require(facade, actor, Permission.VIEW if feed_only else Permission.READ_AUDIT)
    with facade.store.unit_of_work(read_only=True) as uow:
        # One indexed, newest-first query bounded by `limit`; never the whole log.
        records = uow.audit.search(
            model=model,
            actor=who,
            actions=(action,) if action else (),
            object_types=FEED_OBJECTS if feed_only else (),
            since=since,
            until=until,
            limit=limit,
        )
        ids = {r.object_id for r in records if r.object_type == ObjectType.REQUEST}
        request_models = {r.id: r.model for r in uow.requests.find() if r.id in ids}
    return list(_events(records, request_models))


def out_of_band(facade: GovernanceFacade, actor: str, model: str = "") -> list[OutOfBandFlag]:
    """Per target, its latest finding when it is open or was put back (not when cleared)."""
    _require(facade, actor, Permission.VIEW)
    last: dict[str, AuditRecord] = {}
    with facade.store.unit_of_work(read_only=True) as uow:
        found = uow.audit.search(
            model=model,
            actions=(
                AuditAction.OUT_OF_BAND_CHANGE,
                AuditAction.OUT_OF_BAND_CLEARED,
                AuditAction.OUT_OF_BAND_REVERTED,
            ),
            object_types=(ObjectType.TARGET,),
            limit=None,
        )
    for rec in found:  # newest first: the first entry per target is its latest
        last.setdefault(rec.object_id, rec)
    flags = []
    for rec in last.values():
        p = _payload(rec)
        if rec.action == AuditAction.OUT_OF_BAND_CLEARED or (model and p.get("model") != model):
            continue
        put_back = rec.action == AuditAction.OUT_OF_BAND_REVERTED
        source = (p.get("detected_by") or {}).get("source", "") if not put_back else "put_back"
        flags.append(
            OutOfBandFlag(
                model=str(p.get("model")),
                target_kind=str(p.get("target_kind")),
                target=str(p.get("target")),
                registry_versions=tuple(str(v) for v in p.get("registry_versions") or ()),
                ledger_version=p.get("restored_version" if put_back else "ledger_version"),
                seq=rec.seq,
                ts=rec.ts,
                status="put_back" if put_back else "open",
                detected_by=str(source),
            )
        )
    return sorted(flags, key=lambda f: (f.status != "open", f.model, f.target_kind, f.target))
