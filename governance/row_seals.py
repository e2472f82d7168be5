"""What each sealed row's seal covers: its canonical content, built from the domain object.

The rows that decide an outcome are sealed (see governance.seals): users (who may sign, with
which roles and password), promotion requests (what is asked and in which state), votes,
decisions and executions. Votes, decisions and executions are written once, after their audit
entry, and their seal also covers that entry's seq: the row and the chain entry that records it
belong together. Sign-in counters (failed_logins, locked_until) are not sealed; they change on
every attempt and decide nothing but a delay.

Standard library only (plus the pure governance modules).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from governance.audit import format_ts, sha256_hex
from governance.domain import Decision, Execution, PromotionRequest, User, Vote
from governance.errors import UNSEALED_HINT, Tampered
from governance.seals import NOT_SEALED

USERS = "users"
REQUESTS = "promotion_requests"
VOTES = "votes"
DECISIONS = "decisions"
EXECUTIONS = "executions"


def _ts(moment: datetime | None) -> str | None:
    return format_ts(moment) if moment is not None else None


def user_content(user: User) -> dict[str, Any]:
    """Who the user is and what they may do (not the sign-in counters)."""
    return {
        "name": user.name,
        "display_name": user.display_name,
        "roles": list(user.roles),
        "password_hash": user.password_hash,
        "disabled": bool(user.disabled),
    }


def request_content(request: PromotionRequest) -> dict[str, Any]:
    """Every stored field of the request; the evidence text by its SHA-256."""
    return {
        "id": request.id,
        "model": request.model,
        "version": request.version,
        "target": request.target,
        "target_kind": str(request.target_kind),
        "requester": request.requester,
        "justification": request.justification,
        "state": str(request.state),
        "created_at": _ts(request.created_at),
        "expires_at": _ts(request.expires_at),
        "policy_hash": request.policy_hash,
        "evidence_sha256": sha256_hex(request.evidence),
        "evidence_hash": request.evidence_hash,
        "content_hash": request.content_hash,
        "kind": str(request.kind),
        "related_request_id": request.related_request_id,
        "row_version": int(request.row_version),
        "updated_at": _ts(request.updated_at),
    }


def vote_content(vote: Vote, audit_seq: int | None) -> dict[str, Any]:
    """The signature and the seq of the `vote_recorded` entry that records it."""
    return {
        "audit_seq": audit_seq,
        "request_id": vote.request_id,
        "approver": vote.approver,
        "decision": str(vote.decision),
        "comment": vote.comment,
        "role_at_signing": vote.role_at_signing,
        "signed_at": _ts(vote.signed_at),
        "meaning": vote.meaning,
        "reauth_method": vote.reauth_method,
        "content_hash": vote.content_hash,
        "signer_name": vote.signer_name,
    }


def decision_content(decision: Decision, audit_seq: int | None) -> dict[str, Any]:
    """The decision and the seq of the entry that records it (approved, rejected, break-glass)."""
    return {
        "audit_seq": audit_seq,
        "request_id": decision.request_id,
        "outcome": str(decision.outcome),
        "decided_at": _ts(decision.decided_at),
        "decided_by": decision.decided_by,
        "approvers": list(decision.approvers),
        "quorum": int(decision.quorum),
        "policy_hash": decision.policy_hash,
        "content_hash": decision.content_hash,
    }


def execution_content(execution: Execution, audit_seq: int | None) -> dict[str, Any]:
    """One execution attempt and the seq of the entry that records its outcome."""
    return {
        "audit_seq": audit_seq,
        "request_id": execution.request_id,
        "attempt": int(execution.attempt),
        "outcome": str(execution.outcome),
        "at": _ts(execution.at),
        "actor": execution.actor,
        "model": execution.model,
        "version": execution.version,
        "target": execution.target,
        "target_kind": str(execution.target_kind),
        "previous_holder": execution.previous_holder,
        "detail": execution.detail,
    }


def tampered(what: str, problem: str) -> Tampered:
    """The error for a record whose seal fails; `what` names it ("the vote of ann on 1a2b")."""
    if problem == NOT_SEALED:
        return Tampered(
            f"{what} is not sealed: it was written outside Countersign, or before sealed "
            f"records ({UNSEALED_HINT}); it does not count"
        )
    return Tampered(
        f"{what} fails its seal ({problem}): it was written or changed outside Countersign "
        "and does not count"
    )
