"""SQLAlchemy rows that run the product, not the record of what it decided.

The webhook outbox and its cursors, MLflow's webhook deliveries and the signed-in browser
sessions: rows that are claimed, retried, expired and pruned. Registered on `governance.orm.Base`
(orm imports this module), so the migration check sees them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from governance.domain import BrowserSession
from governance.orm import Base, UTCDateTime


class WebhookCursorRow(Base):
    """How far the webhook dispatcher has read the audit log for one endpoint (URL hash)."""

    __tablename__ = "webhook_cursors"

    endpoint_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookOutboxRow(Base):
    """One notification of one audit event to one endpoint, with its delivery state."""

    __tablename__ = "webhook_outbox"

    endpoint_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True)
    action: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # pending, sending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "status", "next_attempt_at"),)


class BrowserSessionRow(Base):
    """A signed-in browser: only hashes of its cookie secret and of its one-time grant."""

    __tablename__ = "browser_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    grant_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    grant_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    idle_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(String(300))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str] = mapped_column(String(200))
    revoke_reason: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index(None, "user_name", "revoked_at"), Index(None, "expires_at"))

    def to_domain(self) -> BrowserSession:
        return BrowserSession(
            id=self.id,
            user=self.user_name,
            created_at=self.created_at,
            last_seen_at=self.last_seen_at,
            idle_expires_at=self.idle_expires_at,
            expires_at=self.expires_at,
            user_agent=self.user_agent,
            secret_hash=self.secret_hash or "",
            grant_hash=self.grant_hash or "",
            grant_expires_at=self.grant_expires_at,
            revoked_at=self.revoked_at,
            revoked_by=self.revoked_by,
            revoke_reason=self.revoke_reason,
        )

    @staticmethod
    def values_of(session: BrowserSession) -> dict[str, Any]:
        return {
            "id": session.id,
            "user_name": session.user,
            # NULL, not "": the unique constraints allow any number of NULLs.
            "secret_hash": session.secret_hash or None,
            "grant_hash": session.grant_hash or None,
            "grant_expires_at": session.grant_expires_at,
            "created_at": session.created_at,
            "last_seen_at": session.last_seen_at,
            "idle_expires_at": session.idle_expires_at,
            "expires_at": session.expires_at,
            "user_agent": session.user_agent,
            "revoked_at": session.revoked_at,
            "revoked_by": session.revoked_by,
            "revoke_reason": session.revoke_reason,
        }


class MlflowDeliveryRow(Base):
    """One webhook delivery received from MLflow, kept until a worker has compared it.

    The primary key is MLflow's delivery id: a replay of the same id violates it, on every
    replica at once.
    """

    __tablename__ = "mlflow_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[int] = mapped_column(BigInteger)  # X-MLflow-Timestamp (unix seconds)
    event: Mapped[str] = mapped_column(String(64))  # e.g. model_version_alias.created
    model: Mapped[str] = mapped_column(String(256))  # "" when the event names no model
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, working, done, failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "status", "next_attempt_at"), Index(None, "received_at"))
