"""Alembic environment, configured in code by `governance.db.alembic_config` (no alembic.ini).

The caller hands in an open connection; the history lives in our own version table. Batch mode
lets later migrations alter tables on SQLite (which rebuilds a table to change it).
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through governance.db.upgrade, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=None,
    version_table=config.attributes.get("version_table", "countersign_alembic_version"),
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
