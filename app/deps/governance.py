"""Governance reads and actions for the pages, over the facade built once per process."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import streamlit as st

from app.deps.core import get_governance, get_settings
from app.entities import ActivityEvent, EvidencePreview, OutOfBandFlag, SigningEligibility
from governance.domain import REAUTH_OIDC_RECENT_LOGIN, RequestDetails

P = ParamSpec("P")
R = TypeVar("R")

# The feeds, findings and histories that pages show on every visit are cached per person and
# per state of the governance database: every change appends an audit entry, so the audit
# chain's head (one indexed read) is the data version, and what the CLI, the webhook receiver
# or another replica wrote shows at once. GOVERNED_TTL_S bounds the rest: MLflow's current
# holders in a history, a request reaching its expiry time.
GOVERNED_TTL_S = 30


def data_version() -> str:
    """The governance database and its audit chain's head: reads are fresh while it stays."""
    from app import governance_views

    head = governance_views.data_version(get_governance())
    return f"{get_settings().db_url}#{head}"  # a process may be pointed elsewhere (tests)


def governed(fn: Callable[P, R]) -> Callable[P, R]:
    """`st.cache_data` keyed by the arguments (the actor first) and by `data_version()`."""

    def keyed(version: str, *args: Any, **kwargs: Any) -> Any:
        del version  # part of the cache key only
        return fn(*args, **kwargs)  # type: ignore[arg-type]

    keyed.__qualname__ = keyed.__name__ = f"governed_{fn.__name__}"
    cached = st.cache_data(ttl=GOVERNED_TTL_S, show_spinner=False)(keyed)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return cached(data_version(), *args, **kwargs)  # type: ignore[no-any-return]

    return wrapper


# ---- governance reads (over the facade built once in bootstrap) --------------------------


def after_write() -> None:
    """Forget cached reads after a mutation: an executed promotion moves aliases and stages."""
    st.cache_data.clear()


def evidence_preview(actor: str, model: str, version: str, target: str) -> EvidencePreview:
    """The evidence a request for (model, version, target) would capture now; records nothing."""
    from app import governance_views

    return governance_views.preview_evidence(get_governance(), actor, model, version, target)


def request_details(actor: str, request_id: str) -> RequestDetails:
    """One request with its votes, decision, executions and quorum progress."""
    return get_governance().get_request(actor, request_id)


def requests(actor: str, *, state: str | None = None, model: str | None = None) -> list[Any]:
    """Promotion requests newest first (PromotionRequest), optionally filtered."""
    return list(get_governance().list_requests(actor, state=state, model=model))


def signing_eligibility(
    actor: str, roles: tuple[str, ...], details: RequestDetails
) -> SigningEligibility:
    """Whether the user may sign this request now, and why."""
    from app import governance_views

    return governance_views.eligibility(get_governance(), actor, roles, details)


def signing_inbox(
    actor: str, roles: tuple[str, ...]
) -> list[tuple[RequestDetails, SigningEligibility]]:
    """The pending requests the user may sign, oldest first."""
    from app import governance_views

    return governance_views.inbox(get_governance(), actor, roles)


@governed
def audit_events(actor: str, **filters: Any) -> list[ActivityEvent]:
    """Audit entries newest first; filters: model, who, action, since, until, limit, feed_only."""
    from app import governance_views

    return governance_views.audit_events(get_governance(), actor, **filters)


def activity(actor: str, model: str = "", limit: int = 30) -> list[ActivityEvent]:
    """The activity feed (requests, votes, executions, registry findings), newest first."""
    return audit_events(actor, model=model, limit=limit, feed_only=True)


@governed
def out_of_band(actor: str, model: str = "") -> list[OutOfBandFlag]:
    """Open out-of-band changes found by reconcile."""
    from app import governance_views

    return governance_views.out_of_band(get_governance(), actor, model)


def policy_hash() -> str:
    """The hash of the policy in force."""
    return get_governance().policy.hash


def oidc_reauthentication() -> Any:
    """The re-authentication an OIDC signer presents (the identity layer checked its age)."""
    from governance.service import Reauthentication

    return Reauthentication(REAUTH_OIDC_RECENT_LOGIN)


# The audit page and the out-of-band checks show the verification; a rerun, another tab or
# another auditor within this window reuses it instead of re-reading the whole chain.
VERIFY_TTL_S = 30


@st.cache_data(ttl=VERIFY_TTL_S, show_spinner=False)
def verify_audit(actor: str) -> Any:
    """Recompute the audit chain (recorded as an audit_verified event); a VerifyResult.

    Cached per actor for VERIFY_TTL_S seconds (and dropped by `after_write`).
    """
    return get_governance().verify_audit(actor)


def audit_bundle(actor: str, models: tuple[str, ...] = (), request_id: str = "") -> bytes:
    """The signed, offline-verifiable audit bundle (zip) for `actor` (admin or auditor).

    Raises:
        SigningKeyError: COUNTERSIGN_SIGNING_KEY is unset or unusable.
        NotAllowed: The actor may not export.
    """
    from app.export.api import audit_bundle_for

    return audit_bundle_for(
        get_settings(), get_governance(), actor, models=models, request_id=request_id or None
    )


def policy_signer_roles() -> frozenset[str]:
    """The approver roles the active policy names (custom ones such as `risk` may sign)."""
    return get_governance().policy.signer_roles()


@governed
def target_history(actor: str, model: str) -> Any:
    """Who held each alias and stage of the model, when, and why (a TargetHistory)."""
    from app import history_views

    return history_views.target_history(get_governance(), actor, model)
