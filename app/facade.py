"""GovernanceFacade: the one door to the workflow for the pages, the CLI and the benchmarks.

Every method opens its own unit of work and calls one `governance.service` function with the
acting user passed explicitly; the service authorises and audits. The facade holds no rules:
a rule here would be skipped by another caller. It is safe to share between threads (the
Streamlit server builds one per process through `app.deps`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from governance import service
from governance.audit import AuditRecord, VerifyResult
from governance.domain import (
    CLI_OPERATOR,
    REAUTH_PASSWORD,
    BreakGlassResult,
    BrowserSession,
    ExecutionResult,
    Finding,
    PromotionRequest,
    RequestDetails,
    SignOffResult,
    User,
)
from governance.enforcement import Outcome
from governance.history import ModelHistory
from governance.policy import Policy
from governance.ports import ModelRegistry, RegistryVersion, TargetAssignment
from governance.unit_of_work import SqlStore, SqlUnitOfWork


class SystemClock:
    """Timezone-aware UTC now."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class LazyRegistry:
    """Builds the MLflow adapter on first use: `import mlflow` costs seconds, and commands such
    as `users add` or `audit verify` never need it."""

    def __init__(self, build: Any) -> None:
        self._build = build
        self._real: ModelRegistry | None = None
        self._lock = threading.Lock()

    def _registry(self) -> ModelRegistry:
        with self._lock:
            if self._real is None:
                self._real = self._build()
            assert self._real is not None
            return self._real

    def get_version(self, model: str, version: str) -> RegistryVersion:
        return self._registry().get_version(model, version)

    def alias_holder(self, model: str, alias: str) -> str | None:
        return self._registry().alias_holder(model, alias)

    def stage_holders(self, model: str, stage: str) -> tuple[str, ...]:
        return self._registry().stage_holders(model, stage)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._registry().set_alias(model, alias, version)

    def delete_alias(self, model: str, alias: str) -> None:
        self._registry().delete_alias(model, alias)

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        self._registry().transition_stage(model, version, stage, archive_existing=archive_existing)

    def set_version_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        self._registry().set_version_tags(model, version, tags)

    def assignments(self, models: tuple[str, ...] | None = None) -> tuple[TargetAssignment, ...]:
        return self._registry().assignments(models)


@dataclass
class GovernanceFacade:
    """The workflow's use cases bound to one database, policy and registry."""

    store: SqlStore
    context: service.Context

    # -- plumbing ---------------------------------------------------------------------------------

    def _uow(self) -> SqlUnitOfWork:
        return self.store.unit_of_work()

    def _read(self) -> SqlUnitOfWork:
        return self.store.unit_of_work(read_only=True)

    @property
    def policy(self) -> Policy:
        """The validated policy in force (its `hash` is stored on every request)."""
        return self.context.policy

    # -- users and sign-in ------------------------------------------------------------------------

    def authenticate(self, name: str, password: str) -> User:
        """Check a name and password (same answer for unknown user and wrong password)."""
        return service.authenticate(self._uow(), self.context, name, password)

    def create_user(
        self,
        actor: str,
        name: str,
        roles: Sequence[str],
        password: str,
        display_name: str = "",
    ) -> User:
        """Create a user with an argon2 hash of `password` (actor needs admin_users)."""
        return service.create_user(
            self._uow(), self.context, actor, name, roles, password, display_name
        )

    def record_sign_in(self, name: str, method: str) -> User:
        """Audit a sign-in the OIDC provider or the trusted proxy vouched for."""
        return service.record_external_sign_in(self._uow(), self.context, name, method)

    def admit_viewer(self, name: str, display_name: str = "") -> User:
        """A viewer account for an identity the OIDC provider vouched for (first sign-in)."""
        return service.admit_viewer(self._uow(), self.context, name, display_name)

    def disable_user(self, actor: str, name: str) -> User:
        """Disable a user; users are never deleted."""
        return service.disable_user(self._uow(), self.context, actor, name)

    def enable_user(self, actor: str, name: str) -> User:
        """Enable a disabled user again and lift a lockout."""
        return service.enable_user(self._uow(), self.context, actor, name)

    def set_roles(self, actor: str, name: str, roles: Sequence[str]) -> User:
        """Replace a user's roles (never your own admin role, never the last active admin's)."""
        return service.set_roles(self._uow(), self.context, actor, name, roles)

    def reset_password(self, actor: str, name: str, password: str) -> None:
        """Set a new password and lift a lockout; someone else's must be changed at their next
        sign-in."""
        service.reset_password(self._uow(), self.context, actor, name, password)

    def change_password(self, name: str, current: str, new: str) -> User:
        """A person replaces their own password, proving the current one."""
        return service.change_password(self._uow(), self.context, name, current, new)

    def list_users(self, actor: str) -> tuple[User, ...]:
        """Every user by name (never show `password_hash`)."""
        return service.list_users(self._uow(), self.context, actor)

    # -- browser sessions -------------------------------------------------------------------------

    def start_session(
        self, name: str, password: str, user_agent: str = ""
    ) -> tuple[User, BrowserSession, str]:
        """Sign in with a password and open a browser session; returns its one-time grant."""
        return service.start_session(self._uow(), self.context, name, password, user_agent)

    def claim_cookie(self, grant: str) -> tuple[BrowserSession, str]:
        """Exchange a session's one-time grant for its cookie secret (made now, stored hashed)."""
        return service.claim_cookie(self._uow(), self.context, grant)

    def resume_session(self, secret: str) -> tuple[BrowserSession, User]:
        """The live session a cookie names (raises SessionEnded otherwise)."""
        return service.resume_session(self._uow(), self.context, secret)

    def check_session(self, session_id: str) -> tuple[BrowserSession, User]:
        """A signed-in tab's session, checked again (raises SessionEnded when it has ended)."""
        return service.check_session(self._uow(), self.context, session_id)

    def end_session(self, actor: str, session_id: str) -> BrowserSession:
        """Log out (the session's own user) or revoke a session (an admin); audited."""
        return service.end_session(self._uow(), self.context, actor, session_id)

    def list_sessions(self, actor: str) -> tuple[BrowserSession, ...]:
        """Every live browser session, newest first (admins)."""
        return service.list_sessions(self._uow(), self.context, actor)

    # -- requests ---------------------------------------------------------------------------------

    def request_promotion(
        self, actor: str, model: str, version: str, target: str, justification: str
    ) -> PromotionRequest:
        """Open a promotion request (evidence captured, gates checked)."""
        return service.request_promotion(
            self._uow(), self.context, actor, model, version, target, justification
        )

    def request_rollback(
        self,
        actor: str,
        model: str,
        target: str,
        justification: str,
        version: str | None = None,
    ) -> PromotionRequest:
        """Ask to restore an earlier holder of a target (default: the one before the last)."""
        return service.request_rollback(
            self._uow(), self.context, actor, model, target, justification, version
        )

    def break_glass(
        self,
        actor: str,
        model: str,
        version: str,
        target: str,
        justification: str,
        *,
        password: str | None = None,
        reauth: service.Reauthentication | None = None,
    ) -> BreakGlassResult:
        """Promote at once (admin), with a follow-up review opened automatically.

        Args:
            password: The admin's password, entered again now (local sign-in).
            reauth: Another re-authentication attested by the identity adapter (OIDC).
        """
        proof = reauth or service.Reauthentication(REAUTH_PASSWORD, password)
        return service.break_glass(
            self._uow(), self.context, actor, model, version, target, justification, proof
        )

    def sign_off(
        self,
        actor: str,
        request_id: str,
        *,
        decision: str,
        comment: str,
        content_hash: str,
        password: str | None = None,
        reauth: service.Reauthentication | None = None,
    ) -> SignOffResult:
        """Approve or reject as an electronic signature; re-authenticates the signer.

        Args:
            decision: "approve" or "reject".
            content_hash: The request content the signer saw (refused when it changed).
            password: The signer's password, entered again now (local sign-in).
            reauth: Another re-authentication attested by the identity adapter (OIDC).
        """
        proof = reauth or service.Reauthentication(REAUTH_PASSWORD, password)
        return service.sign_off(
            self._uow(),
            self.context,
            actor,
            request_id,
            decision=decision,
            comment=comment,
            reauth=proof,
            content_hash=content_hash,
        )

    def cancel(self, actor: str, request_id: str, reason: str = "") -> PromotionRequest:
        """Withdraw a pending request (its requester only)."""
        return service.cancel(self._uow(), self.context, actor, request_id, reason)

    def execute(self, actor: str, request_id: str) -> ExecutionResult:
        """Apply an approved request to MLflow, or retry a failed execution (idempotent)."""
        return service.execute(self._uow(), self.context, actor, request_id)

    def refresh_evidence(self, actor: str, request_id: str) -> PromotionRequest:
        """Capture the evidence again; a changed snapshot supersedes the request."""
        return service.refresh_evidence(self._uow(), self.context, actor, request_id)

    def expire_due(self, actor: str) -> tuple[PromotionRequest, ...]:
        """Expire the pending requests past their expiry."""
        return service.expire_due(self._uow(), self.context, actor)

    def get_request(self, actor: str, request_id: str) -> RequestDetails:
        """One request with votes, decision, executions and quorum progress."""
        return service.get_request(self._read(), self.context, actor, request_id)

    def list_requests(
        self,
        actor: str,
        *,
        state: str | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> tuple[PromotionRequest, ...]:
        """Requests newest first, optionally filtered."""
        return service.list_requests(
            self._read(), self.context, actor, state=state, model=model, limit=limit
        )

    # -- registry and audit -----------------------------------------------------------------------

    def reconcile(self, actor: str, models: tuple[str, ...] | None = None) -> tuple[Finding, ...]:
        """Record every difference between MLflow and the ledger (once each)."""
        return service.reconcile(self._uow(), self.context, actor, models)

    def enforce(
        self,
        actor: str,
        models: tuple[str, ...] | None,
        detected_by: Mapping[str, object],
    ) -> tuple[Finding, ...]:
        """Compare MLflow with the ledger and apply the policy's `out_of_band` setting."""
        return service.enforce(self._uow(), self.context, actor, models, detected_by=detected_by)

    def history(self, actor: str, model: str) -> ModelHistory:
        """Who held each alias and stage of the model, from when to when, decided by whom."""
        return service.model_history(self._uow(), self.context, actor, model)

    def put_back(self, actor: str, model: str, target: str) -> Outcome:
        """Restore the governed holder of one target now (admin), whatever the policy says."""
        return service.put_back(self._uow(), self.context, actor, model, target)

    def record_refused_delivery(
        self, actor: str, reason: str, details: Mapping[str, object]
    ) -> None:
        """Audit refused MLflow webhook deliveries (the receiver bounds how often)."""
        service.record_refused_delivery(self._uow(), self.context, actor, reason, details)

    def record_export(
        self,
        actor: str,
        *,
        scope: Mapping[str, Any],
        first_seq: int,
        last_seq: int,
        manifest_sha256: str,
        files: Mapping[str, str],
    ) -> AuditRecord:
        """Record a written audit export in the chain (authorised by the service)."""
        return service.record_export(
            self._uow(),
            self.context,
            actor,
            scope=scope,
            first_seq=first_seq,
            last_seq=last_seq,
            manifest_sha256=manifest_sha256,
            files=files,
        )

    def verify_audit(self, actor: str = CLI_OPERATOR) -> VerifyResult:
        """Recompute the audit chain in one read-only, streamed pass (authorised and recorded
        by the service); the store's check also compares the chain-head row with the last
        entry, which catches entries removed from the end."""
        return service.verify_audit(self._uow(), self.context, actor, verifier=self.store.verify)

    def dispose(self) -> None:
        """Release the database connections."""
        self.store.dispose()
