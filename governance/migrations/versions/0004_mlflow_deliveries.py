"""MLflow webhook deliveries: stored by the receiver, compared with the ledger by its worker.

The delivery id is the primary key, so a replayed delivery is refused by the database on every
replica alike.

Revision ID: 0004_mlflow_deliveries
Revises: 0003_audit_query_indexes
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_mlflow_deliveries"
down_revision = "0003_audit_query_indexes"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mlflow_deliveries",
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=False),
        sa.Column("claimed_until", _utc(), nullable=True),
        sa.Column("processed_at", _utc(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_mlflow_deliveries"),
    )
    op.create_index(
        "ix_mlflow_deliveries_status_next_attempt_at",
        "mlflow_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index("ix_mlflow_deliveries_received_at", "mlflow_deliveries", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_mlflow_deliveries_received_at", table_name="mlflow_deliveries")
    op.drop_index("ix_mlflow_deliveries_status_next_attempt_at", table_name="mlflow_deliveries")
    op.drop_table("mlflow_deliveries")
