"""Builds the signed audit bundle: one zip an auditor verifies with nothing but a public key.

Layout of the zip (BUNDLE_FORMAT):

    events.jsonl     one `AuditRecord.as_dict()` per line, ascending seq, a contiguous slice
    events.csv       the same events, same fields, plus `in_scope` (1 when the event concerns
                     the scope's models or request); the period decides the slice, the scope
                     only marks, because a chain with holes cannot be verified. Text cells are
                     spreadsheet-safe: one ' in front of a cell starting with = + - @ TAB CR or
                     ' (app.export.csv_cells; the rule is also in the manifest)
    checkpoint.json  canonical JSON {origin, last_seq, head_hash, signed_at, alg, key_id}: the
                     last exported event's entry hash
    checkpoint.sig   base64 Ed25519 signature of the exact checkpoint.json bytes
    report.html      the readable report, self-contained
    report.pdf       the same report as PDF
    manifest.json    SHA-256 and size of every member above, the scope, the slice, integrity
                     facts and the signing key id
    manifest.sig     base64 Ed25519 signature of the exact manifest.json bytes
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.errors import InvalidInput, NotFound
from app.export.csv_cells import NUMERIC_COLUMNS, RULE
from app.export.events import (
    BUNDLE_FORMAT,
    MEMBERS,
    EventStats,
    scope_matcher,
    write_events,
    write_member,
)
from app.export.html_report import render_html
from app.export.model import ExportScope, ExportSource, utc_now
from app.export.pdf_report import render_pdf
from app.export.sections import Integrity, ReportContext
from app.export.signing import SIGNATURE_ALG, key_id, public_key_b64, sign, signed_checkpoint
from governance.audit import GENESIS_HASH, format_ts, verify_chain


@dataclass(frozen=True)
class BundleSummary:
    """What an export produced, for the CLI line and the page's message."""

    events: int
    in_scope: int
    first_seq: int
    last_seq: int
    head_hash: str
    chain_ok: bool
    key_id: str
    requests: int
    manifest_sha256: str = ""
    file_sha256: Mapping[str, str] = field(default_factory=dict)


def chain_origin(source: ExportSource) -> str:
    """A stable name for the chain: its genesis entry's hash (no database URL, no secrets)."""
    first = next(iter(source.iter_events(1, 1)), None)
    return f"countersign:{first.entry_hash[:32]}" if first else "countersign:unknown"


def _prefix(source: ExportSource, first_seq: int) -> tuple[bool, str]:
    """Verify the chain from genesis up to the slice; (ok, head hash before the slice)."""
    if first_seq <= 1:
        return True, GENESIS_HASH
    result = verify_chain(source.iter_events(1, first_seq - 1))
    return result.ok and result.last_seq == first_seq - 1, result.head_hash


def write_bundle(
    source: ExportSource,
    scope: ExportScope,
    key: Ed25519PrivateKey,
    out: BinaryIO | Path,
    *,
    now: datetime | None = None,
) -> BundleSummary:
    """Export the scope into a signed zip at `out` (a path or a writable binary file).

    Raises:
        InvalidInput: The period is empty or reversed, or the log is empty.
        NotFound: The scope names a request that does not exist.
    """
    if scope.since and scope.until and scope.since >= scope.until:
        raise InvalidInput("the start of the period (--since) must be earlier than its end")
    head_seq, head_hash = source.chain_head()
    if head_seq == 0:
        raise InvalidInput("the audit log is empty; there is nothing to export")
    span = source.seq_range(scope.since_ts, scope.until_ts)
    if span is None:
        raise InvalidInput(
            f"no audit events between {scope.since_ts or 'the start'} and {scope.until_ts or 'now'}"
        )
    # Events appended while we export belong to the next export: the head read first bounds it.
    span = (span[0], min(span[1], head_seq))
    if span[0] > span[1]:
        raise InvalidInput("no audit events in the period yet")
    snapshot = source.snapshot(scope)
    if scope.request_id is not None and not snapshot.requests:
        raise NotFound(f"request {scope.request_id} not found in scope")
    generated_at = format_ts(now or utc_now())
    origin = chain_origin(source)
    prefix_ok, prefix_head = _prefix(source, span[0])
    concerns = scope_matcher(
        scope.models, frozenset(r.request_id for r in snapshot.requests), scope.filtered
    )
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=3) as zf:
        stats = write_events(zf, source.iter_events(*span), concerns)
        if stats.count == 0:
            raise InvalidInput(f"the store returned no audit events for seq {span[0]}-{span[1]}")
        cp_bytes, cp_sig = signed_checkpoint(
            key,
            origin=origin,
            last_seq=stats.last_seq,
            head_hash=stats.last_entry_hash,
            signed_at=generated_at,
        )
        files = dict(stats.files)
        files["checkpoint.json"] = write_member(zf, "checkpoint.json", cp_bytes)
        files["checkpoint.sig"] = write_member(zf, "checkpoint.sig", cp_sig.encode("ascii"))
        verify = stats.verify
        integrity = Integrity(
            origin=origin,
            db_head_seq=head_seq,
            db_head_hash=head_hash,
            slice_ok=bool(verify and verify.ok),
            slice_reason=_reason(stats),
            prefix_ok=prefix_ok,
            linked=prefix_head == stats.first_prev_hash,
            checkpoint=json.loads(cp_bytes),
            checkpoint_signature=cp_sig,
            public_key_b64=public_key_b64(key.public_key()),
        )
        ctx = ReportContext(scope, generated_at, snapshot, stats, integrity)
        files["report.html"] = write_member(zf, "report.html", render_html(ctx).encode("utf-8"))
        files["report.pdf"] = write_member(zf, "report.pdf", render_pdf(ctx))
        manifest = _manifest(ctx, files, key)
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
        zf.writestr("manifest.json", manifest_bytes)
        zf.writestr("manifest.sig", sign(key, manifest_bytes).encode("ascii"))
    return BundleSummary(
        events=stats.count,
        in_scope=stats.in_scope,
        first_seq=stats.first_seq,
        last_seq=stats.last_seq,
        head_hash=stats.last_entry_hash,
        chain_ok=integrity.ok,
        key_id=key_id(key.public_key()),
        requests=len(snapshot.requests),
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        file_sha256={name: str(entry["sha256"]) for name, entry in files.items()},
    )


def build_bundle(
    source: ExportSource,
    scope: ExportScope,
    key: Ed25519PrivateKey,
    *,
    now: datetime | None = None,
) -> bytes:
    """The signed bundle as bytes (for a download button); see `write_bundle`."""
    return build_bundle_with_summary(source, scope, key, now=now)[0]


def build_bundle_with_summary(
    source: ExportSource,
    scope: ExportScope,
    key: Ed25519PrivateKey,
    *,
    now: datetime | None = None,
) -> tuple[bytes, BundleSummary]:
    """The signed bundle as bytes and what it holds (to record the export in the chain)."""
    buffer = io.BytesIO()
    summary = write_bundle(source, scope, key, buffer, now=now)
    return buffer.getvalue(), summary


def _reason(stats: EventStats) -> str:
    v = stats.verify
    if v is None or v.ok:
        return ""
    return f"seq {v.first_broken_seq}: {v.reason}"


def _manifest(ctx: ReportContext, files: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    stats, integrity = ctx.stats, ctx.integrity
    return {
        "format": BUNDLE_FORMAT,
        "generated_at": ctx.generated_at,
        "scope": ctx.scope.as_dict(),
        "policies": [{"name": p.name, "sha256": p.sha256} for p in ctx.snapshot.policies],
        "events": {
            "first_seq": stats.first_seq,
            "last_seq": stats.last_seq,
            "count": stats.count,
            "in_scope": stats.in_scope,
            "first_prev_hash": stats.first_prev_hash,
            "last_entry_hash": stats.last_entry_hash,
        },
        "integrity": {
            "origin": integrity.origin,
            "db_head_seq": integrity.db_head_seq,
            "db_head_hash": integrity.db_head_hash,
            "chain_verified_from_genesis": integrity.ok,
            "problem": integrity.slice_reason,
        },
        "files": {name: files[name] for name in MEMBERS},
        "events_csv": {"numeric_columns": list(NUMERIC_COLUMNS), "text_cells": RULE},
        "signature": {
            "alg": SIGNATURE_ALG,
            "key_id": key_id(key.public_key()),
            "public_key": public_key_b64(key.public_key()),
            "manifest_signature": "manifest.sig",
            "checkpoint_signature": "checkpoint.sig",
        },
    }
