"""Webhook outbox: a delivery cursor per endpoint over the audit log, and one row per delivery.

Deliveries are derived from committed audit events (the dispatcher reads past a stored cursor),
so the workflow writes nothing extra and a notification can never precede its commit. The
endpoint is stored only as a hash of its URL: a Slack incoming-webhook URL is a credential.

Revision ID: 0002_webhook_outbox
Revises: 0001_initial
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_webhook_outbox"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_cursors",
        sa.Column("endpoint_key", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_key", name="pk_webhook_cursors"),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("endpoint_key", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=False),
        sa.Column("claimed_until", _utc(), nullable=True),
        sa.Column("delivered_at", _utc(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_key", "seq", name="pk_webhook_outbox"),
        sa.UniqueConstraint("delivery_id", name="uq_webhook_outbox_delivery_id"),
    )
    op.create_index(
        "ix_webhook_outbox_status_next_attempt_at",
        "webhook_outbox",
        ["status", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_outbox_status_next_attempt_at", table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
    op.drop_table("webhook_cursors")
