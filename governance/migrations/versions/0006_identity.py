"""Identity: a password an admin set must be changed at the next sign-in; browser sessions.

`browser_sessions` keeps each signed-in browser server-side: only the SHA-256 of its cookie
secret and of its one-time grant (both unique), its user, times, user agent and revocation.

Revision ID: 0006_identity
Revises: 0005_monitoring
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_identity"
down_revision = "0005_monitoring"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "browser_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        sa.Column("grant_hash", sa.String(64), nullable=True),
        sa.Column("grant_expires_at", _utc(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("last_seen_at", _utc(), nullable=False),
        sa.Column("idle_expires_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("user_agent", sa.String(300), nullable=False),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=False),
        sa.Column("revoke_reason", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_browser_sessions"),
        sa.UniqueConstraint("secret_hash", name="uq_browser_sessions_secret_hash"),
        sa.UniqueConstraint("grant_hash", name="uq_browser_sessions_grant_hash"),
    )
    op.create_index(
        "ix_browser_sessions_user_name_revoked_at", "browser_sessions", ["user_name", "revoked_at"]
    )
    op.create_index("ix_browser_sessions_expires_at", "browser_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_browser_sessions_expires_at", table_name="browser_sessions")
    op.drop_index("ix_browser_sessions_user_name_revoked_at", table_name="browser_sessions")
    op.drop_table("browser_sessions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
