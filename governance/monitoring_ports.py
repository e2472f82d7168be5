"""What monitoring needs from storage: batches and findings, and a read-only source for gates.

Implemented with SQLAlchemy in governance/monitoring_store.py (the unit of work exposes it as
`uow.monitoring`). Standard library only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from governance.monitoring_rules import BatchFigures, MonitoringBatch, MonitoringFinding
from governance.store_ports import UnitOfWork


class MonitoringRepository(Protocol):
    """Scored batches (unique per model, version and content) and the findings they open."""

    def add_batch(self, batch: MonitoringBatch) -> bool:
        """Insert a batch; False (and nothing written) when its batch_id is already stored."""
        ...

    def get_batch(self, batch_id: str) -> MonitoringBatch | None:
        """One batch by id, or None."""
        ...

    def batches(
        self, model: str, version: str, *, limit: int | None = None
    ) -> tuple[MonitoringBatch, ...]:
        """The version's batches, oldest as-of first (ties: recording order); `limit` newest."""
        ...

    def figures(self, model: str, version: str) -> tuple[BatchFigures, ...]:
        """What the thresholds read from every batch of the version (no per-column results)."""
        ...

    def add_finding(self, finding: MonitoringFinding) -> None:
        """Insert an open finding.

        Raises:
            Conflict: An open finding of the same (model, version, check) exists.
        """
        ...

    def get_finding(self, finding_id: str) -> MonitoringFinding | None:
        """One finding by id, or None."""
        ...

    def findings(
        self, *, model: str = "", version: str = "", state: str = "", limit: int | None = 200
    ) -> tuple[MonitoringFinding, ...]:
        """Findings newest first, filtered."""
        ...

    def close_finding(
        self, finding_id: str, *, closed_at: datetime, closed_by: str, comment: str
    ) -> bool:
        """Close an open finding (a conditional update); False when it was not open."""
        ...


class MonitoringUnitOfWork(UnitOfWork, Protocol):
    """The unit of work with the monitoring tables in the same transaction as the audit log."""

    @property
    def monitoring(self) -> MonitoringRepository: ...


class MonitoringSource(Protocol):
    """Read-only monitoring figures for promotion evidence (outside any transaction)."""

    def summary(self, model: str, version: str) -> tuple[int, MonitoringBatch | None]:
        """How many batches the version has and its latest one (by as-of time)."""
        ...
