"""SQLAlchemy rows of monitoring: scored batches and the findings they open.

Ordinary rows, not the audit chain (each recording and each finding also appends one audit
entry). Registered on `governance.orm.Base` (orm imports this module), so the migration check
sees them; created by migration 0004.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Double, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from governance.monitoring_rules import OPEN, MonitoringBatch, MonitoringFinding
from governance.orm import Base, UTCDateTime


def _names(raw: str) -> tuple[str, ...]:
    return tuple(str(n) for n in json.loads(raw or "[]"))


class MonitoringBatchRow(Base):
    """One scored batch; `id` is the recording order, `batch_id` the public id."""

    __tablename__ = "monitoring_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(32), unique=True)
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer)
    reference_rows: Mapped[int] = mapped_column(Integer)
    dataset_drift: Mapped[bool] = mapped_column(Boolean)
    share_drifted: Mapped[float] = mapped_column(Double)
    drift_share_threshold: Mapped[float] = mapped_column(Double)
    drifted_columns: Mapped[str] = mapped_column(Text)  # canonical JSON list of names
    columns: Mapped[str] = mapped_column(Text)  # canonical JSON list of per-column results
    quality: Mapped[str] = mapped_column(Text)  # canonical JSON object, or ""
    task: Mapped[str] = mapped_column(String(16))
    label_column: Mapped[str] = mapped_column(String(256))
    prediction_column: Mapped[str] = mapped_column(String(256))
    reference: Mapped[str] = mapped_column(Text)
    config_hash: Mapped[str] = mapped_column(String(64))
    evidently_version: Mapped[str] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint(
            "model", "version", "content_sha256", name="uq_monitoring_batches_content"
        ),
        Index(None, "model", "version", "as_of"),
    )

    def to_domain(self) -> MonitoringBatch:
        return MonitoringBatch(
            batch_id=self.batch_id,
            model=self.model,
            version=self.version,
            content_sha256=self.content_sha256,
            as_of=self.as_of,
            recorded_at=self.recorded_at,
            recorded_by=self.recorded_by,
            source=self.source,
            rows=self.rows,
            reference_rows=self.reference_rows,
            dataset_drift=self.dataset_drift,
            share_drifted=self.share_drifted,
            drift_share_threshold=self.drift_share_threshold,
            drifted_columns=_names(self.drifted_columns),
            columns=self.columns,
            quality=self.quality,
            task=self.task,
            label_column=self.label_column,
            prediction_column=self.prediction_column,
            reference=self.reference,
            config_hash=self.config_hash,
            evidently_version=self.evidently_version,
        )

    @staticmethod
    def values_of(batch: MonitoringBatch) -> dict[str, Any]:
        return {
            "batch_id": batch.batch_id,
            "model": batch.model,
            "version": batch.version,
            "content_sha256": batch.content_sha256,
            "as_of": batch.as_of,
            "recorded_at": batch.recorded_at,
            "recorded_by": batch.recorded_by,
            "source": batch.source,
            "rows": batch.rows,
            "reference_rows": batch.reference_rows,
            "dataset_drift": batch.dataset_drift,
            "share_drifted": batch.share_drifted,
            "drift_share_threshold": batch.drift_share_threshold,
            "drifted_columns": json.dumps(list(batch.drifted_columns), separators=(",", ":")),
            "columns": batch.columns,
            "quality": batch.quality,
            "task": batch.task,
            "label_column": batch.label_column,
            "prediction_column": batch.prediction_column,
            "reference": batch.reference,
            "config_hash": batch.config_hash,
            "evidently_version": batch.evidently_version,
        }


class MonitoringFindingRow(Base):
    """A monitoring finding; at most one open per (model, version, check)."""

    __tablename__ = "monitoring_findings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(64))
    check_name: Mapped[str] = mapped_column(String(64))
    limit_text: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Double)
    consecutive: Mapped[int] = mapped_column(Integer)
    batch_id: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index(
            "uq_monitoring_findings_one_open",
            "model",
            "version",
            "check_name",
            unique=True,
            sqlite_where=text(f"state = '{OPEN}'"),
            postgresql_where=text(f"state = '{OPEN}'"),
        ),
        Index(None, "state", "model"),
    )

    def to_domain(self) -> MonitoringFinding:
        return MonitoringFinding(
            id=self.id,
            model=self.model,
            version=self.version,
            check=self.check_name,
            limit=self.limit_text,
            value=self.value,
            consecutive=self.consecutive,
            batch_id=self.batch_id,
            as_of=self.as_of,
            opened_at=self.opened_at,
            opened_by=self.opened_by,
            state=self.state,
            closed_at=self.closed_at,
            closed_by=self.closed_by,
            comment=self.comment,
        )

    @staticmethod
    def values_of(finding: MonitoringFinding) -> dict[str, Any]:
        return {
            "id": finding.id,
            "model": finding.model,
            "version": finding.version,
            "check_name": finding.check,
            "limit_text": finding.limit,
            "value": finding.value,
            "consecutive": finding.consecutive,
            "batch_id": finding.batch_id,
            "as_of": finding.as_of,
            "opened_at": finding.opened_at,
            "opened_by": finding.opened_by,
            "state": finding.state,
            "closed_at": finding.closed_at,
            "closed_by": finding.closed_by,
            "comment": finding.comment,
        }
