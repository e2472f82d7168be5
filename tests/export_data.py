"""Audit chains and governance snapshots for the export tests (real sealing, real signing)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.export.model import (
    Execution,
    Finding,
    GateResult,
    GovernanceSnapshot,
    PolicyRef,
    RequestRecord,
    Signature,
    TargetChange,
    VersionRecord,
)
from app.export.signing import sign
from governance.audit import GENESIS_HASH, AuditRecord, entry_hash, seal, sha256_hex

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def make_chain(
    n: int, *, start: datetime = T0, step: timedelta = timedelta(minutes=1)
) -> list[AuditRecord]:
    """A valid chain of n events alternating between two models and three requests."""
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        model = "credit-risk" if seq % 2 else "churn"
        rec = seal(
            prev_hash=prev,
            seq=seq,
            moment=start + step * seq,
            actor=("alice", "bob", "dana")[seq % 3],
            action=("request_created", "vote_recorded", "execution_succeeded")[seq % 3],
            object_type="request",
            object_id=f"r-{seq % 3}-{model}",
            payload={"model": model, "request_id": f"r-{seq % 3}-{model}", "note": "é <b>&"},
        )
        records.append(rec)
        prev = rec.entry_hash
    return records


def _sig(signer: str, name: str, at: str, meaning: str = "approve") -> Signature:
    return Signature(
        signer=signer,
        printed_name=name,
        role="approver",
        decision=meaning,
        meaning=f"{meaning.title()} of the move to champion",
        signed_at=at,
        reauth_method="password",
        comment=f"<i>checked</i> by {name}",
        content_hash="c" * 64,
    )


def sample_snapshot() -> GovernanceSnapshot:
    """Two requests with two signers each, a break-glass with a follow-up, one finding."""
    promo = RequestRecord(
        request_id="r-1-credit-risk",
        model="credit-risk",
        version="3",
        target="champion",
        state="executed",
        requester="dana",
        created_at="2026-11-02T09:01:00.000000Z",
        justification="better AUC <script>alert(1)</script>",
        run_author="erin",
        quorum=2,
        policy_hash="p" * 64,
        evidence_hash="e" * 64,
        content_hash="c" * 64,
        gates=(GateResult("accuracy >= current", True, "0.91 vs 0.89"),),
        signatures=(
            _sig("alice", "Alice Approver", "2026-11-02T09:02:00.000000Z"),
            _sig("bob", "Bob Checker", "2026-11-02T09:03:00.000000Z"),
        ),
        decision="approved",
        decided_at="2026-11-02T09:03:00.000000Z",
        executions=(Execution("2026-11-02T09:03:01.000000Z", "succeeded", "bob", "alias set"),),
    )
    churn = RequestRecord(
        request_id="r-2-churn",
        model="churn",
        version="7",
        target="Production",
        target_kind="stage",
        state="rejected",
        requester="erin",
        created_at="2026-11-02T09:04:00.000000Z",
        signatures=(_sig("carol", "Carol Reviewer", "2026-11-02T09:05:00.000000Z", "reject"),),
        decision="rejected",
    )
    glass = RequestRecord(
        request_id="r-0-credit-risk",
        model="credit-risk",
        version="2",
        target="champion",
        kind="break_glass",
        state="executed",
        requester="root-admin",
        created_at="2026-11-02T09:06:00.000000Z",
        justification="incident 42",
        related_request="r-9-credit-risk",
    )
    return GovernanceSnapshot(
        versions=(
            VersionRecord("credit-risk", "3", "run3", "erin", ("champion",), "None"),
            VersionRecord("churn", "7", "run7", "erin", (), "Staging"),
        ),
        target_history=(
            TargetChange(
                "2026-11-02T09:03:01.000000Z",
                "credit-risk",
                "alias",
                "champion",
                "3",
                "2",
                "r-1-credit-risk",
                "bob",
            ),
        ),
        requests=(promo, churn, glass),
        findings=(
            Finding("2026-11-02T09:07:00.000000Z", "credit-risk", "alias", "champion", "3", "4"),
        ),
        policies=(PolicyRef("default_policy.yaml", "p" * 64),),
    )


def rewrite(
    bundle: bytes,
    member: str,
    change: Callable[[bytes], bytes],
    *,
    rehash: bool = False,
    resign_with: Ed25519PrivateKey | None = None,
) -> bytes:
    """A copy of the bundle with one member changed; optionally its manifest hash updated
    (`rehash`) and the manifest signed again (`resign_with`)."""
    src = zipfile.ZipFile(io.BytesIO(bundle))
    members = {name: src.read(name) for name in src.namelist()}
    members[member] = change(members[member])
    if rehash:
        manifest = json.loads(members["manifest.json"])
        manifest["files"][member] = {
            "sha256": hashlib.sha256(members[member]).hexdigest(),
            "bytes": len(members[member]),
        }
        members["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    if resign_with is not None:
        members["manifest.sig"] = sign(resign_with, members["manifest.json"]).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def resealed(records: list[AuditRecord]) -> list[AuditRecord]:
    """Renumber from 1 and recompute every payload hash and entry hash, as the app would."""
    out: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq, rec in enumerate(records, start=1):
        payload_hash = sha256_hex(rec.payload)
        digest = entry_hash(
            prev_hash=prev,
            seq=seq,
            ts=rec.ts,
            actor=rec.actor,
            action=rec.action,
            object_type=rec.object_type,
            object_id=rec.object_id,
            payload_hash=payload_hash,
            alg=rec.alg,
        )
        out.append(
            replace(rec, seq=seq, payload_hash=payload_hash, prev_hash=prev, entry_hash=digest)
        )
        prev = digest
    return out
