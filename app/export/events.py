"""Streams audit events into events.jsonl and events.csv inside the bundle, hashing as it goes.

Nothing holds the whole log: each event is written, hashed and chain-checked as it passes, and
only counters and a bounded sample for the human-readable report stay in memory. The CSV's text
cells are spreadsheet-safe (`app.export.csv_cells`); events.jsonl keeps every value unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from app.export.csv_cells import neutralise
from app.export.model import Finding
from governance.audit import AuditRecord, VerifyResult, verify_chain

# Reconcile records what MLflow shows but the ledger never executed under this action.
FINDING_ACTIONS = frozenset({"out_of_band_change"})
MAX_FINDINGS = 1000
# Policy loads and chain checks bear on every request and model, whatever the scope.
CHAIN_WIDE = frozenset({"policy", "audit"})

RECORD_FIELDS = (
    "seq",
    "ts",
    "actor",
    "action",
    "object_type",
    "object_id",
    "payload",
    "payload_hash",
    "prev_hash",
    "entry_hash",
    "alg",
)
CSV_FIELDS = (*RECORD_FIELDS, "in_scope")
# /2: the text cells of events.csv are spreadsheet-safe (app.export.csv_cells); /1 wrote them raw.
BUNDLE_FORMAT = "countersign-audit-bundle/2"
# The bundle's members besides the manifest and its signature: written by the exporter,
# required by the offline verifier.
MEMBERS = (
    "events.jsonl",
    "events.csv",
    "checkpoint.json",
    "checkpoint.sig",
    "report.html",
    "report.pdf",
)
# The CSV row below is written field by field in this order (fast); keep it the record's order.
assert tuple(AuditRecord.__dataclass_fields__) == RECORD_FIELDS
FLUSH_ROWS = 1024
SPILL_BYTES = 8 << 20


@dataclass
class EventStats:
    """What streaming the events learned: counts, ends of the slice, hashes, a sample."""

    count: int = 0
    in_scope: int = 0
    first_seq: int = 0
    last_seq: int = 0
    first_prev_hash: str = ""
    last_entry_hash: str = ""
    first_ts: str = ""
    last_ts: str = ""
    by_action: Counter[str] = field(default_factory=Counter)
    head: list[AuditRecord] = field(default_factory=list)  # for the readable event log
    tail: deque[AuditRecord] = field(default_factory=deque)
    files: dict[str, dict[str, object]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    verify: VerifyResult | None = None

    @property
    def omitted(self) -> int:
        return self.in_scope - len(self.head) - len(self.tail)


class _HashingWriter:
    """Writes bytes into a zip member (or a spill file) while computing SHA-256 and size."""

    def __init__(self, zf: zipfile.ZipFile | None, name: str) -> None:
        self.name = name
        # A zip takes one writer at a time: the second stream spills to a temporary file
        # (memory up to SPILL_BYTES, disk beyond) and is copied in afterwards.
        self._fh: IO[bytes] = (
            zf.open(name, "w", force_zip64=True)
            if zf is not None
            else tempfile.SpooledTemporaryFile(max_size=SPILL_BYTES)  # noqa: SIM115 closed in close()
        )
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._sha.update(data)
        self._fh.write(data)
        self.size += len(data)

    def close(self) -> dict[str, object]:
        self._fh.close()
        return {"sha256": self._sha.hexdigest(), "bytes": self.size}

    def copy_into(self, zf: zipfile.ZipFile) -> dict[str, object]:
        """Move a spilled stream into the zip and close it."""
        self._fh.seek(0)
        with zf.open(self.name, "w", force_zip64=True) as dest:
            shutil.copyfileobj(self._fh, dest, 1 << 20)
        return self.close()


def write_member(zf: zipfile.ZipFile, name: str, data: bytes) -> dict[str, object]:
    """Write one whole member and return its manifest entry."""
    writer = _HashingWriter(zf, name)
    writer.write(data)
    return writer.close()


def write_events(
    zf: zipfile.ZipFile,
    records: Iterable[AuditRecord],
    concerns: Callable[[AuditRecord], bool],
    *,
    sample: int = 150,
) -> EventStats:
    """Write events.jsonl and events.csv from an ascending stream and verify it on the way.

    Args:
        zf: The bundle, open for writing.
        records: A contiguous, ascending slice of the chain.
        concerns: Whether an event concerns the export's scope (marked `in_scope` in the CSV).
        sample: How many in-scope events to keep from each end for the readable report.
    """
    stats = EventStats(tail=deque(maxlen=sample))
    jsonl = _HashingWriter(zf, "events.jsonl")
    csv_out = _HashingWriter(None, "events.csv")
    buf = io.StringIO()
    # RFC 4180 line ends: the writer then quotes every cell holding a CR or LF, so a CR in a
    # name tried at sign-in cannot split a row (with "\n" alone it went out unquoted).
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines: list[str] = []

    def flush() -> None:
        # Batches: the compressor and the hash are far cheaper on large writes than per line.
        jsonl.write("".join(lines).encode("utf-8"))
        lines.clear()
        csv_out.write(buf.getvalue().encode("utf-8"))
        buf.seek(0)
        buf.truncate()

    def passing() -> Iterator[AuditRecord]:
        for rec in records:
            lines.append(encode(rec.as_dict()) + "\n")
            mine = concerns(rec)
            # Every text cell, our own fields too: a tampered chain is exported as evidence.
            writer.writerow(
                (
                    rec.seq,
                    neutralise(rec.ts),
                    neutralise(rec.actor),
                    neutralise(rec.action),
                    neutralise(rec.object_type),
                    neutralise(rec.object_id),
                    neutralise(rec.payload),
                    neutralise(rec.payload_hash),
                    neutralise(rec.prev_hash),
                    neutralise(rec.entry_hash),
                    neutralise(rec.alg),
                    "1" if mine else "0",
                )
            )
            if len(lines) >= FLUSH_ROWS:
                flush()
            _count(stats, rec, mine, sample)
            yield rec

    stream = passing()
    try:
        first = next(stream, None)
        if first is not None:
            stats.verify = verify_chain(
                _prepend(first, stream), start_prev_hash=first.prev_hash, start_seq=first.seq
            )
            for _ in stream:  # a broken chain is still exported in full: it is the evidence
                pass
        flush()
    except BaseException:
        # Close both streams so that the zip can close and the original error surfaces.
        jsonl.close()
        csv_out.close()
        raise
    stats.files["events.jsonl"] = jsonl.close()
    stats.files["events.csv"] = csv_out.copy_into(zf)
    return stats


def _prepend(first: AuditRecord, rest: Iterator[AuditRecord]) -> Iterator[AuditRecord]:
    yield first
    yield from rest


def _count(stats: EventStats, rec: AuditRecord, mine: bool, sample: int) -> None:
    if stats.count == 0:
        stats.first_seq = rec.seq
        stats.first_prev_hash = rec.prev_hash
        stats.first_ts = rec.ts
    stats.count += 1
    stats.last_seq = rec.seq
    stats.last_entry_hash = rec.entry_hash
    stats.last_ts = rec.ts
    stats.by_action[rec.action] += 1
    if not mine:
        return
    if rec.action in FINDING_ACTIONS and len(stats.findings) < MAX_FINDINGS:
        stats.findings.append(finding_from(rec))
    stats.in_scope += 1
    if len(stats.head) < sample:
        stats.head.append(rec)
    else:
        stats.tail.append(rec)


def scope_matcher(
    models: tuple[str, ...], request_ids: frozenset[str], filtered: bool
) -> Callable[[AuditRecord], bool]:
    """Whether an event concerns the scope: its object, or a `model`/`request_id` in its payload.

    Args:
        models: The scope's models (empty: any model).
        request_ids: The requests in scope (with a request filter, only these count).
        filtered: False when the scope is everything; then every event concerns it.
    """
    if not filtered:
        return lambda rec: True
    model_set = frozenset(models)
    by_request_only = not models

    def concerns(rec: AuditRecord) -> bool:
        if rec.object_type in CHAIN_WIDE:
            return True
        if rec.object_id in request_ids and "request" in rec.object_type:
            return True
        payload: dict[str, object] = {}
        if '"model"' in rec.payload or '"request_id"' in rec.payload:
            try:
                loaded = json.loads(rec.payload)
            except ValueError:
                loaded = {}
            payload = loaded if isinstance(loaded, dict) else {}
        if str(payload.get("request_id", "")) in request_ids:
            return True
        if by_request_only:
            return False
        model = payload.get("model")
        if isinstance(model, str) and model in model_set:
            return True
        if "model" in rec.object_type:
            name = rec.object_id.split("/")[0].split(":")[0].split("@")[0]
            return name in model_set
        return False

    return concerns


def finding_from(rec: AuditRecord) -> Finding:
    """An out-of-band finding read from its audit event's payload."""
    try:
        loaded = json.loads(rec.payload)
    except ValueError:
        loaded = {}
    p = loaded if isinstance(loaded, dict) else {}
    registry = p.get("registry_versions", p.get("actual", ""))
    if isinstance(registry, list):
        registry = ", ".join(str(v) for v in registry) or "none"
    return Finding(
        at=rec.ts,
        model=str(p.get("model", "")),
        kind=str(p.get("target_kind", p.get("kind", ""))),
        target=str(p.get("target", rec.object_id)),
        expected=str(p.get("ledger_version", p.get("expected", "")) or "none"),
        actual=str(registry),
        detail=f"seq {rec.seq}",
    )
