"""Indexes for the audit page's filtered, newest-first queries: (actor, seq) and (action, seq).

Revision ID: 0003_audit_query_indexes
Revises: 0002_webhook_outbox
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0003_audit_query_indexes"
down_revision = "0002_webhook_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_events_actor_seq", "audit_events", ["actor", "seq"])
    op.create_index("ix_audit_events_action_seq", "audit_events", ["action", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_action_seq", table_name="audit_events")
    op.drop_index("ix_audit_events_actor_seq", table_name="audit_events")
