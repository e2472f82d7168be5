"""Sealed records: a seal column on the audit chain and on every row that decides an outcome.

A seal is an HMAC under a key the database never sees (governance.seals). Votes, decisions and
executions also name the seq of the audit entry that records them. The columns are nullable:
rows written before this revision have no seal until an operator runs
`python -m app.cli audit seal-existing`; until then they do not count. Plain ADD COLUMN (no
table rebuild), so the append-only triggers on audit_events stay as they are.

Revision ID: 0007_sealed_records
Revises: 0006_identity
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sealed_records"
down_revision = "0006_identity"
branch_labels = None
depends_on = None

SEAL_LENGTH = 96  # "s1:" + 16-digit key id + ":" + 64-digit MAC, with room to spare
SEALED = ("audit_events", "users", "promotion_requests", "votes", "decisions", "executions")
BOUND = ("votes", "decisions", "executions")


def upgrade() -> None:
    for table in SEALED:
        op.add_column(table, sa.Column("seal", sa.String(SEAL_LENGTH), nullable=True))
    for table in BOUND:
        op.add_column(table, sa.Column("audit_seq", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for table in BOUND:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("audit_seq")
    for table in SEALED[1:]:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("seal")
    # audit_events is append-only: its triggers refuse the table rebuild SQLite would need, and
    # a downgrade that dropped seals would silently drop the proof they carry. It keeps the
    # column; the older code ignores it.
