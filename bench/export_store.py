"""Seeds the events of bench.export into a source the exporter reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.export.model import MemorySource
from governance.audit import AuditRecord


@contextmanager
def seeded_source(folder: Path, events: Iterable[AuditRecord]) -> Iterator[MemorySource]:
    yield MemorySource(list(events))
