"""Plain-data views of governance objects for the CLI's `--json` output and its text lines.

Never includes a password hash.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from governance.domain import Execution, Finding, PromotionRequest, RequestDetails, User, Vote


def _ts(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def user_view(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "display_name": user.display_name,
        "roles": list(user.roles),
        "disabled": user.disabled,
        "locked_until": _ts(user.locked_until),
        "created_at": _ts(user.created_at),
    }


def request_view(request: PromotionRequest) -> dict[str, Any]:
    return {
        "id": request.id,
        "state": str(request.state),
        "kind": str(request.kind),
        "model": request.model,
        "version": request.version,
        "target": request.target,
        "target_kind": str(request.target_kind),
        "requester": request.requester,
        "justification": request.justification,
        "created_at": _ts(request.created_at),
        "expires_at": _ts(request.expires_at),
        "updated_at": _ts(request.updated_at),
        "policy_hash": request.policy_hash,
        "evidence_hash": request.evidence_hash,
        "content_hash": request.content_hash,
        "related_request_id": request.related_request_id,
    }


def vote_view(vote: Vote) -> dict[str, Any]:
    return {
        "approver": vote.approver,
        "signer_name": vote.signer_name,
        "decision": str(vote.decision),
        "comment": vote.comment,
        "role_at_signing": vote.role_at_signing,
        "signed_at": _ts(vote.signed_at),
        "meaning": vote.meaning,
        "reauth_method": vote.reauth_method,
        "content_hash": vote.content_hash,
    }


def execution_view(execution: Execution) -> dict[str, Any]:
    return {
        "attempt": execution.attempt,
        "outcome": str(execution.outcome),
        "at": _ts(execution.at),
        "actor": execution.actor,
        "previous_holder": execution.previous_holder,
        "detail": execution.detail,
    }


def details_view(details: RequestDetails) -> dict[str, Any]:
    view = request_view(details.request)
    view.update(
        quorum=details.quorum,
        approvals=details.approvals,
        approver_roles=list(details.approver_roles),
        votes=[vote_view(v) for v in details.votes],
        decision=(
            {
                "outcome": str(details.decision.outcome),
                "decided_at": _ts(details.decision.decided_at),
                "decided_by": details.decision.decided_by,
                "approvers": list(details.decision.approvers),
            }
            if details.decision is not None
            else None
        ),
        executions=[execution_view(e) for e in details.executions],
    )
    return view


def finding_view(finding: Finding) -> dict[str, Any]:
    return {
        "model": finding.model,
        "target_kind": finding.target_kind,
        "target": finding.target,
        "registry_versions": list(finding.registry_versions),
        "ledger_version": finding.ledger_version,
        "newly_recorded": finding.newly_recorded,
    }


def request_line(request: PromotionRequest) -> str:
    return (
        f"{request.id}  {request.state:<16} {request.model} v{request.version} -> "
        f"{request.target_kind} {request.target}  by {request.requester}"
    )


def emit(data: dict[str, Any]) -> None:
    """Print exactly one JSON object on one line."""
    sys.stdout.write(json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n")
