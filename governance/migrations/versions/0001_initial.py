"""Initial governance schema: users, promotion requests, votes and the append-only audit chain.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64  # governance.audit.GENESIS_HASH, frozen here as migrations must be

_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END
    """,
    """
    CREATE TRIGGER audit_chain_head_forward_only BEFORE UPDATE ON audit_chain_head
    WHEN NEW.seq < OLD.seq OR NEW.id <> OLD.id
    BEGIN SELECT RAISE(ABORT, 'audit_chain_head is append-only: it only moves forward'); END
    """,
    """
    CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head
    BEGIN SELECT RAISE(ABORT, 'audit_chain_head is append-only: DELETE refused'); END
    """,
)

_POSTGRES_TRIGGERS = (
    """
    CREATE FUNCTION countersign_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    CREATE FUNCTION countersign_chain_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.seq < OLD.seq OR NEW.id <> OLD.id THEN
            RAISE EXCEPTION 'audit_chain_head is append-only: it only moves forward'
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION countersign_audit_append_only()
    """,
    """
    CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION countersign_audit_append_only()
    """,
    """
    CREATE TRIGGER audit_chain_head_forward_only BEFORE UPDATE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION countersign_chain_head_forward_only()
    """,
    """
    CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE OR TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION countersign_audit_append_only()
    """,
)


def _create_audit_tables() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("alg", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
        sa.UniqueConstraint("prev_hash", name="uq_audit_events_prev_hash"),
        sa.UniqueConstraint("entry_hash", name="uq_audit_events_entry_hash"),
    )
    op.create_index(
        "ix_audit_events_object_type_object_id", "audit_events", ["object_type", "object_id"]
    )
    op.create_index("ix_audit_events_ts", "audit_events", ["ts"])
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_chain_head"),
        sa.CheckConstraint("id = 1", name="ck_audit_chain_head_single_row"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "head_hash": GENESIS_HASH}])


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _create_workflow_tables() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", _utc(), nullable=True),
        sa.Column("created_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "promotion_requests",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("requester", sa.String(200), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("evidence_hash", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("related_request_id", sa.String(64), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_promotion_requests"),
    )
    pending = sa.text("state = 'pending' AND kind <> 'follow_up'")
    op.create_index(
        "uq_promotion_requests_one_pending",
        "promotion_requests",
        ["model", "target_kind", "target"],
        unique=True,
        sqlite_where=pending,
        postgresql_where=pending,
    )
    op.create_index(
        "ix_promotion_requests_state_created_at", "promotion_requests", ["state", "created_at"]
    )
    op.create_index(
        "ix_promotion_requests_model_created_at", "promotion_requests", ["model", "created_at"]
    )
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("approver", sa.String(128), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("role_at_signing", sa.String(64), nullable=False),
        sa.Column("signed_at", _utc(), nullable=False),
        sa.Column("meaning", sa.Text(), nullable=False),
        sa.Column("reauth_method", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("signer_name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_votes"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["promotion_requests.id"],
            name="fk_votes_request_id_promotion_requests",
        ),
        sa.UniqueConstraint("request_id", "approver", name="uq_votes_request_approver"),
    )
    op.create_table(
        "decisions",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("decided_at", _utc(), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("approvers", sa.Text(), nullable=False),
        sa.Column("quorum", sa.Integer(), nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_decisions"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["promotion_requests.id"],
            name="fk_decisions_request_id_promotion_requests",
        ),
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("previous_holder", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_executions"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["promotion_requests.id"],
            name="fk_executions_request_id_promotion_requests",
        ),
        sa.UniqueConstraint("request_id", "attempt", name="uq_executions_request_attempt"),
    )
    op.create_index("ix_executions_outcome_model", "executions", ["outcome", "model"])


def upgrade() -> None:
    _create_workflow_tables()
    _create_audit_tables()
    triggers = (
        _POSTGRES_TRIGGERS if op.get_bind().dialect.name == "postgresql" else _SQLITE_TRIGGERS
    )
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    for table in ("executions", "decisions", "votes", "promotion_requests", "users"):
        op.drop_table(table)
    if bind.dialect.name == "postgresql":
        op.execute("DROP TABLE audit_events CASCADE")
        op.execute("DROP TABLE audit_chain_head CASCADE")
        op.execute("DROP FUNCTION countersign_audit_append_only()")
        op.execute("DROP FUNCTION countersign_chain_head_forward_only()")
        return
    op.drop_table("audit_events")
    op.drop_table("audit_chain_head")
