"""SQLAlchemy 2.x row classes. Each converts itself to a domain object before the session closes.

The tables are created by the Alembic migrations, never by `create_all`; a test compares this
metadata with the migrated schema so that the two cannot drift apart.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from governance.audit import AuditRecord, canonical_json
from governance.domain import Decision, Execution, PromotionRequest, User, Vote

SEAL_LENGTH = 96  # "s1:<16-digit key id>:<64-digit MAC>" (governance.seals)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(row: type[Base]) -> Table:
    """The Core table of a row class (for statements built once, without the ORM layer)."""
    return Base.metadata.tables[row.__tablename__]


class AuditEventRow(Base):
    """One entry of the hash chain; UPDATE and DELETE are refused by database triggers."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(32))  # the exact hashed text: ...T..:..:..ffffffZ
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON text, hashed as stored
    payload_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)  # a fork breaks a constraint
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(32))
    # HMAC of entry_hash under the seal key (governance.seals); not hashed into the chain. NULL
    # only for entries made before sealed records, vouched for by `audit seal-existing`.
    seal: Mapped[str | None] = mapped_column(String(SEAL_LENGTH), nullable=True)

    __table_args__ = (
        Index(None, "object_type", "object_id"),
        Index(None, "ts"),
        Index(None, "actor", "seq"),  # the audit page's filters, newest first
        Index(None, "action", "seq"),
    )

    def to_record(self) -> AuditRecord:
        return AuditRecord(
            seq=self.seq,
            ts=self.ts,
            actor=self.actor,
            action=self.action,
            object_type=self.object_type,
            object_id=self.object_id,
            payload=self.payload,
            payload_hash=self.payload_hash,
            prev_hash=self.prev_hash,
            entry_hash=self.entry_hash,
            alg=self.alg,
        )

    @classmethod
    def from_record(cls, record: AuditRecord) -> AuditEventRow:
        return cls(**record.as_dict())


class ChainHeadRow(Base):
    """The single row naming the last entry; writers lock it (FOR UPDATE) to serialise appends."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


def _names_to_text(names: tuple[str, ...]) -> str:
    return canonical_json(list(names))


def _names_from_text(raw: str) -> tuple[str, ...]:
    return tuple(str(name) for name in json.loads(raw or "[]"))


class UserRow(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    roles: Mapped[str] = mapped_column(Text)  # canonical JSON list
    password_hash: Mapped[str] = mapped_column(Text, default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    seal: Mapped[str | None] = mapped_column(String(SEAL_LENGTH), nullable=True)
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )

    def to_domain(self) -> User:
        return User(
            name=self.name,
            display_name=self.display_name,
            roles=_names_from_text(self.roles),
            password_hash=self.password_hash,
            disabled=self.disabled,
            failed_logins=self.failed_logins,
            locked_until=self.locked_until,
            created_at=self.created_at,
            must_change_password=self.must_change_password,
        )

    def fill(self, user: User) -> UserRow:
        self.name = user.name
        self.display_name = user.display_name
        self.roles = _names_to_text(user.roles)
        self.password_hash = user.password_hash
        self.disabled = user.disabled
        self.failed_logins = user.failed_logins
        self.locked_until = user.locked_until
        self.created_at = user.created_at
        self.must_change_password = user.must_change_password
        return self


class RequestRow(Base):
    __tablename__ = "promotion_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    target_kind: Mapped[str] = mapped_column(String(16))
    requester: Mapped[str] = mapped_column(String(200))
    justification: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    policy_hash: Mapped[str] = mapped_column(String(64))
    evidence: Mapped[str] = mapped_column(Text)
    evidence_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    related_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    row_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    seal: Mapped[str | None] = mapped_column(String(SEAL_LENGTH), nullable=True)

    __table_args__ = (
        # One open request per target; follow-up reviews move nothing, so they are exempt.
        Index(
            "uq_promotion_requests_one_pending",
            "model",
            "target_kind",
            "target",
            unique=True,
            sqlite_where=text("state = 'pending' AND kind <> 'follow_up'"),
            postgresql_where=text("state = 'pending' AND kind <> 'follow_up'"),
        ),
        Index(None, "state", "created_at"),
        Index(None, "model", "created_at"),
    )

    def to_domain(self) -> PromotionRequest:
        return PromotionRequest(
            id=self.id,
            model=self.model,
            version=self.version,
            target=self.target,
            target_kind=self.target_kind,
            requester=self.requester,
            justification=self.justification,
            state=self.state,
            created_at=self.created_at,
            expires_at=self.expires_at,
            policy_hash=self.policy_hash,
            evidence=self.evidence,
            evidence_hash=self.evidence_hash,
            content_hash=self.content_hash,
            kind=self.kind,
            related_request_id=self.related_request_id,
            row_version=self.row_version,
            updated_at=self.updated_at,
        )

    @staticmethod
    def values_of(request: PromotionRequest) -> dict[str, Any]:
        return {
            "id": request.id,
            "model": request.model,
            "version": request.version,
            "target": request.target,
            "target_kind": str(request.target_kind),
            "requester": request.requester,
            "justification": request.justification,
            "state": str(request.state),
            "created_at": request.created_at,
            "expires_at": request.expires_at,
            "policy_hash": request.policy_hash,
            "evidence": request.evidence,
            "evidence_hash": request.evidence_hash,
            "content_hash": request.content_hash,
            "kind": str(request.kind),
            "related_request_id": request.related_request_id,
            "row_version": request.row_version,
            "updated_at": request.updated_at,
        }


class VoteRow(Base):
    __tablename__ = "votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("promotion_requests.id"))
    approver: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text)
    role_at_signing: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    meaning: Mapped[str] = mapped_column(Text)
    reauth_method: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    signer_name: Mapped[str] = mapped_column(String(200), default="")
    audit_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    seal: Mapped[str | None] = mapped_column(String(SEAL_LENGTH), nullable=True)

    __table_args__ = (UniqueConstraint("request_id", "approver", name="uq_votes_request_approver"),)

    def to_domain(self) -> Vote:
        return Vote(
            request_id=self.request_id,
            approver=self.approver,
            decision=self.decision,
            comment=self.comment,
            role_at_signing=self.role_at_signing,
            signed_at=self.signed_at,
            meaning=self.meaning,
            reauth_method=self.reauth_method,
            content_hash=self.content_hash,
            signer_name=self.signer_name,
        )

    @staticmethod
    def values_of(vote: Vote) -> dict[str, Any]:
        return {
            "request_id": vote.request_id,
            "approver": vote.approver,
            "decision": str(vote.decision),
            "comment": vote.comment,
            "role_at_signing": vote.role_at_signing,
            "signed_at": vote.signed_at,
            "meaning": vote.meaning,
            "reauth_method": vote.reauth_method,
            "content_hash": vote.content_hash,
            "signer_name": vote.signer_name,
        }


class DecisionRow(Base):
    __tablename__ = "decisions"

    request_id: Mapped[str] = mapped_column(ForeignKey("promotion_requests.id"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str] = mapped_column(String(200))
    approvers: Mapped[str] = mapped_column(Text)  # canonical JSON list
    quorum: Mapped[int] = mapped_column(Integer)
    policy_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    audit_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    seal: Mapped[str | None] = mapped_column(String(SEAL_LENGTH), nullable=True)

    def to_domain(self) -> Decision:
        return Decision(
            request_id=self.request_id,
            outcome=self.outcome,
            decided_at=self.decided_at,
            decided_by=self.decided_by,
            approvers=_names_from_text(self.approvers),
            quorum=self.quorum,
            policy_hash=self.policy_hash,
            content_hash=self.content_hash,
        )

    @staticmethod
    def values_of(decision: Decision) -> dict[str, Any]:
        return {
            "request_id": decision.request_id,
            "outcome": str(decision.outcome),
            "decided_at": decision.decided_at,
            "decided_by": decision.decided_by,
            "approvers": _names_to_text(decision.approvers),
            "quorum": decision.quorum,
            "policy_hash": decision.policy_hash,
            "content_hash": decision.content_hash,
        }


class ExecutionRow(Base):
    __tablename__ = "executions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("promotion_requests.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    target_kind: Mapped[str] = mapped_column(String(16))
    previous_holder: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    audit_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    seal: Mapped[str | None] = mapped_column(String(SEAL_LENGTH), nullable=True)

    __table_args__ = (
        UniqueConstraint("request_id", "attempt", name="uq_executions_request_attempt"),
        Index(None, "outcome", "model"),
    )

    def to_domain(self) -> Execution:
        return Execution(
            request_id=self.request_id,
            attempt=self.attempt,
            outcome=self.outcome,
            at=self.at,
            actor=self.actor,
            model=self.model,
            version=self.version,
            target=self.target,
            target_kind=self.target_kind,
            previous_holder=self.previous_holder,
            detail=self.detail,
        )

    @staticmethod
    def values_of(execution: Execution) -> dict[str, Any]:
        return {
            "request_id": execution.request_id,
            "attempt": execution.attempt,
            "outcome": str(execution.outcome),
            "at": execution.at,
            "actor": execution.actor,
            "model": execution.model,
            "version": execution.version,
            "target": execution.target,
            "target_kind": str(execution.target_kind),
            "previous_holder": execution.previous_holder,
            "detail": execution.detail,
        }


# The monitoring rows and the operational rows live in their own modules; importing them here
# registers them on Base, so every user of this metadata (the migration check, create
# statements) sees one schema.
from governance import (  # noqa: E402
    monitoring_rows as monitoring_rows,
    operational_rows as operational_rows,
)
