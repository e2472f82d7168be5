"""Monitoring batches and findings in SQL (see governance.monitoring_ports).

`SqlMonitoringRepository` works inside the unit of work's session (`uow.monitoring`), so a
batch, its audit entry and the findings it opens commit together. `SqlMonitoringSource` reads
on its own short connection, for promotion evidence and the pages.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from governance.db import READ_ONLY, translate_errors
from governance.monitoring_rows import MonitoringBatchRow, MonitoringFindingRow
from governance.monitoring_rules import (
    CLOSED,
    OPEN,
    BatchFigures,
    MonitoringBatch,
    MonitoringFinding,
    metrics_of,
)
from governance.orm import table_of

_ORDER = (MonitoringBatchRow.as_of, MonitoringBatchRow.id)


class SqlMonitoringRepository:
    """Implements governance.monitoring_ports.MonitoringRepository over one session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add_batch(self, batch: MonitoringBatch) -> bool:
        flavour = postgresql if self._session.get_bind().dialect.name == "postgresql" else sqlite
        # ON CONFLICT DO NOTHING: two runs of the same batch at once record it once, and the
        # loser's transaction stays usable (it then reads the winner's row).
        statement = (
            flavour.insert(table_of(MonitoringBatchRow))
            .values(**MonitoringBatchRow.values_of(batch))
            .on_conflict_do_nothing()
            .returning(table_of(MonitoringBatchRow).c.id)
        )
        with translate_errors():
            return self._session.execute(statement).first() is not None

    def get_batch(self, batch_id: str) -> MonitoringBatch | None:
        with translate_errors():
            row = self._session.scalars(
                select(MonitoringBatchRow).where(MonitoringBatchRow.batch_id == batch_id)
            ).first()
        return row.to_domain() if row else None

    def batches(
        self, model: str, version: str, *, limit: int | None = None
    ) -> tuple[MonitoringBatch, ...]:
        query = select(MonitoringBatchRow).where(
            MonitoringBatchRow.model == model, MonitoringBatchRow.version == version
        )
        if limit is not None:
            query = query.order_by(*(c.desc() for c in _ORDER)).limit(limit)
            with translate_errors():
                rows = list(self._session.scalars(query))
            return tuple(r.to_domain() for r in reversed(rows))
        with translate_errors():
            return tuple(r.to_domain() for r in self._session.scalars(query.order_by(*_ORDER)))

    def figures(self, model: str, version: str) -> tuple[BatchFigures, ...]:
        query = (
            select(
                MonitoringBatchRow.batch_id,
                MonitoringBatchRow.as_of,
                MonitoringBatchRow.recorded_at,
                MonitoringBatchRow.share_drifted,
                MonitoringBatchRow.quality,
            )
            .where(MonitoringBatchRow.model == model, MonitoringBatchRow.version == version)
            .order_by(*_ORDER)
        )
        with translate_errors():
            rows = self._session.execute(query).all()
        return tuple(
            BatchFigures(str(batch_id), as_of, recorded_at, float(share), metrics_of(quality))
            for batch_id, as_of, recorded_at, share, quality in rows
        )

    def add_finding(self, finding: MonitoringFinding) -> None:
        with translate_errors():
            self._session.execute(
                table_of(MonitoringFindingRow)
                .insert()
                .values(**MonitoringFindingRow.values_of(finding))
            )

    def get_finding(self, finding_id: str) -> MonitoringFinding | None:
        with translate_errors():
            row = self._session.get(MonitoringFindingRow, finding_id)
        return row.to_domain() if row else None

    def findings(
        self, *, model: str = "", version: str = "", state: str = "", limit: int | None = 200
    ) -> tuple[MonitoringFinding, ...]:
        query = select(MonitoringFindingRow).order_by(
            MonitoringFindingRow.opened_at.desc(), MonitoringFindingRow.id
        )
        if model:
            query = query.where(MonitoringFindingRow.model == model)
        if version:
            query = query.where(MonitoringFindingRow.version == version)
        if state:
            query = query.where(MonitoringFindingRow.state == state)
        if limit is not None:
            query = query.limit(limit)
        with translate_errors():
            return tuple(r.to_domain() for r in self._session.scalars(query))

    def close_finding(
        self, finding_id: str, *, closed_at: datetime, closed_by: str, comment: str
    ) -> bool:
        statement = (
            update(table_of(MonitoringFindingRow))
            .where(
                table_of(MonitoringFindingRow).c.id == finding_id,
                table_of(MonitoringFindingRow).c.state == OPEN,
            )
            .values(state=CLOSED, closed_at=closed_at, closed_by=closed_by, comment=comment)
        )
        with translate_errors():
            result = self._session.execute(statement)
        self._session.expire_all()  # a finding read earlier in this session is stale now
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


class SqlMonitoringSource:
    """Implements governance.monitoring_ports.MonitoringSource on its own connections."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def summary(self, model: str, version: str) -> tuple[int, MonitoringBatch | None]:
        of_version = (MonitoringBatchRow.model == model, MonitoringBatchRow.version == version)
        with translate_errors(), Session(self.engine.execution_options(**{READ_ONLY: True})) as s:
            count = s.scalar(
                select(func.count()).select_from(MonitoringBatchRow).where(*of_version)
            )
            row = s.scalars(
                select(MonitoringBatchRow)
                .where(*of_version)
                .order_by(*(c.desc() for c in _ORDER))
                .limit(1)
            ).first()
            return int(count or 0), row.to_domain() if row else None

    def batches(self, model: str, version: str) -> tuple[MonitoringBatch, ...]:
        """Every batch of the version, oldest as-of first, in one read-only transaction."""
        with translate_errors(), Session(self.engine.execution_options(**{READ_ONLY: True})) as s:
            return SqlMonitoringRepository(s).batches(model, version)
