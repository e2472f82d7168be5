"""Checking the seals of the audit chain while it is verified (see governance.seals).

Every entry must carry a valid seal, except the entries an `audit_sealed_existing` entry vouches
for: those were written before sealed records existed, and an operator sealed them once (after
checking them against a signed checkpoint, or with a recorded warning) with
`python -m app.cli audit seal-existing`. That entry is itself sealed; one that is not is ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, select

from governance.audit import VerifyResult
from governance.domain import AuditAction
from governance.errors import UNSEALED_HINT
from governance.orm import AuditEventRow
from governance.seals import NOT_SEALED, Sealer


def legacy_through(conn: Connection, sealer: Sealer) -> int:
    """The last seq that a validly sealed `audit_sealed_existing` entry vouches for (0: none)."""
    rows = conn.execute(
        select(
            AuditEventRow.seq, AuditEventRow.entry_hash, AuditEventRow.seal, AuditEventRow.payload
        )
        .where(AuditEventRow.action == AuditAction.AUDIT_SEALED_EXISTING)
        .order_by(AuditEventRow.seq)
    ).all()
    through = 0
    for seq, digest, seal, payload in rows:
        if sealer.check_entry(str(digest), seal):
            continue
        try:
            vouched = int(json.loads(payload).get("through_seq") or 0)
        except (ValueError, TypeError, AttributeError):
            continue
        through = max(through, min(vouched, int(seq) - 1))
    return through


def entry_reason(problem: str) -> str:
    """The verification reason for an entry whose seal fails."""
    if problem == NOT_SEALED:
        return (
            "the entry is not sealed: it was appended outside Countersign, or it predates sealed "
            f"records ({UNSEALED_HINT})"
        )
    return f"the entry's seal fails ({problem}): it was appended or changed outside Countersign"


class SealScan:
    """Checks each streamed entry's seal and stops the stream at the first one that fails.

    Stopping the stream there makes the chain verification end at the entry before it, so the
    result describes the last entry that verified in every respect (`result`).
    """

    def __init__(self, sealer: Sealer, legacy_through: int = 0) -> None:
        self.sealer = sealer
        self.legacy_through = legacy_through
        self.failure: tuple[int, str] | None = None

    def fresh(self) -> SealScan:
        """A scan with the same key and vouched range, for another segment of the chain."""
        return SealScan(self.sealer, self.legacy_through)

    def checked(self, rows: Iterable[Any]) -> Iterator[Any]:
        """Yield rows (with `seq`, `entry_hash` and `seal`) until one fails its seal."""
        check, legacy = self.sealer.entry_checker(), self.legacy_through
        for row in rows:
            if not (row.seal is None and row.seq <= legacy):
                problem = check(row.entry_hash, row.seal)
                if problem:
                    self.failure = (int(row.seq), problem)
                    return
            yield row

    def result(self, chain: VerifyResult) -> VerifyResult:
        """The chain's result, or the seal failure when the chain verified up to it."""
        if self.failure is None or not chain.ok:
            return chain
        seq, problem = self.failure
        return replace(chain, ok=False, first_broken_seq=seq, reason=entry_reason(problem))
