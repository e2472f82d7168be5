"""Monitoring: scored production batches per model version, and the findings they open.

Ordinary rows (the audit chain records each batch and each finding by hash and verdict).
At most one open finding per (model, version, check): a partial unique index.

Revision ID: 0005_monitoring
Revises: 0004_mlflow_deliveries
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_monitoring"
down_revision = "0004_mlflow_deliveries"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitoring_batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("as_of", _utc(), nullable=False),
        sa.Column("recorded_at", _utc(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("reference_rows", sa.Integer(), nullable=False),
        sa.Column("dataset_drift", sa.Boolean(), nullable=False),
        sa.Column("share_drifted", sa.Double(), nullable=False),
        sa.Column("drift_share_threshold", sa.Double(), nullable=False),
        sa.Column("drifted_columns", sa.Text(), nullable=False),
        sa.Column("columns", sa.Text(), nullable=False),
        sa.Column("quality", sa.Text(), nullable=False),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("label_column", sa.String(256), nullable=False),
        sa.Column("prediction_column", sa.String(256), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("evidently_version", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitoring_batches"),
        sa.UniqueConstraint("batch_id", name="uq_monitoring_batches_batch_id"),
        sa.UniqueConstraint(
            "model", "version", "content_sha256", name="uq_monitoring_batches_content"
        ),
    )
    op.create_index(
        "ix_monitoring_batches_model_version_as_of",
        "monitoring_batches",
        ["model", "version", "as_of"],
    )
    op.create_table(
        "monitoring_findings",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("check_name", sa.String(64), nullable=False),
        sa.Column("limit_text", sa.String(200), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("consecutive", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("as_of", _utc(), nullable=False),
        sa.Column("opened_at", _utc(), nullable=False),
        sa.Column("opened_by", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("closed_at", _utc(), nullable=True),
        sa.Column("closed_by", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitoring_findings"),
    )
    still_open = sa.text("state = 'open'")
    op.create_index(
        "uq_monitoring_findings_one_open",
        "monitoring_findings",
        ["model", "version", "check_name"],
        unique=True,
        sqlite_where=still_open,
        postgresql_where=still_open,
    )
    op.create_index("ix_monitoring_findings_state_model", "monitoring_findings", ["state", "model"])


def downgrade() -> None:
    op.drop_index("ix_monitoring_findings_state_model", table_name="monitoring_findings")
    op.drop_index("uq_monitoring_findings_one_open", table_name="monitoring_findings")
    op.drop_table("monitoring_findings")
    op.drop_index("ix_monitoring_batches_model_version_as_of", table_name="monitoring_batches")
    op.drop_table("monitoring_batches")
