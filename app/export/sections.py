"""The content both readable reports share: section titles, the regulatory map, duties evidence.

HTML and PDF render the same `ReportContext`, so they cannot say different things.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.export.events import EventStats
from app.export.model import ExportScope, GovernanceSnapshot, RequestRecord
from governance.audit import AuditRecord

SECTIONS = (
    ("1", "Scope"),
    ("2", "Model inventory and target history"),
    ("3", "Requests, evidence, gates and signatures"),
    ("4", "Rollbacks, break-glass and out-of-band findings"),
    ("5", "Separation of duties"),
    ("6", "Event log"),
    ("7", "Integrity"),
    ("8", "Regulatory mapping"),
)

# (framework, provision, what it asks for, sections of this report that serve it)
REGULATORY_MAP = (
    (
        "EU AI Act",
        "Art. 12 Record-keeping",
        "Automatic recording of events over the system's lifetime",
        "6 Event log; 7 Integrity; events.jsonl, events.csv",
    ),
    (
        "EU AI Act",
        "Art. 19 Automatically generated logs",
        "Providers keep the logs (at least six months)",
        "6 Event log; 7 Integrity; signed checkpoint",
    ),
    (
        "EU AI Act",
        "Annex IV Technical documentation",
        "Changes made to the system through its lifecycle",
        "2 Model inventory and target history; 3 Requests; 4 Rollbacks",
    ),
    (
        "SR 26-2 (successor of SR 11-7)",
        "Model inventory",
        "A complete inventory of models, versions and their use",
        "2 Model inventory and target history",
    ),
    (
        "SR 26-2 (successor of SR 11-7)",
        "Independent review, effective challenge",
        "Approval by reviewers independent of development",
        "3 Signatures; 5 Separation of duties; 4 Out-of-band findings",
    ),
    (
        "21 CFR Part 11",
        "11.10(e) Audit trails",
        "Secure, computer-generated, time-stamped audit trails",
        "6 Event log; 7 Integrity",
    ),
    (
        "21 CFR Part 11",
        "11.50 Signature manifestations",
        "Printed name, date and time, and meaning of each signature",
        "3 Requests (signatures table)",
    ),
    (
        "21 CFR Part 11",
        "11.200(a) Signature components",
        "Identification components entered again at signing",
        "3 Requests (re-authentication column)",
    ),
    (
        "ISO/IEC 42001",
        "A.6.2.8 AI system recording of event logs",
        "Event logs recorded and kept for the AI system",
        "6 Event log; 7 Integrity",
    ),
)


@dataclass(frozen=True)
class DutyCheck:
    """Separation-of-duties evidence for one request."""

    request_id: str
    requester: str
    run_author: str
    approvers: tuple[str, ...]
    conflicts: tuple[str, ...]

    @property
    def held(self) -> bool:
        return not self.conflicts

    @property
    def verdict(self) -> str:
        if self.conflicts:
            return "VIOLATED: " + "; ".join(self.conflicts)
        return "held" if self.approvers else "held (no approvals recorded)"


def duty_checks(requests: tuple[RequestRecord, ...]) -> tuple[DutyCheck, ...]:
    """Neither the requester nor the version's run author may appear among the approvers."""
    checks = []
    for req in requests:
        approvers = tuple(s.signer for s in req.signatures if s.decision == "approve")
        conflicts = []
        if req.requester in approvers:
            conflicts.append(f"requester {req.requester} approved")
        if req.run_author and req.run_author in approvers:
            conflicts.append(f"run author {req.run_author} approved")
        checks.append(
            DutyCheck(req.request_id, req.requester, req.run_author, approvers, tuple(conflicts))
        )
    return tuple(checks)


@dataclass(frozen=True)
class Integrity:
    """The integrity facts the report states and the manifest carries."""

    origin: str
    db_head_seq: int
    db_head_hash: str
    slice_ok: bool
    slice_reason: str
    prefix_ok: bool
    linked: bool
    checkpoint: dict[str, Any]
    checkpoint_signature: str
    public_key_b64: str

    @property
    def ok(self) -> bool:
        return self.slice_ok and self.prefix_ok and self.linked


@dataclass(frozen=True)
class ReportContext:
    scope: ExportScope
    generated_at: str
    snapshot: GovernanceSnapshot
    stats: EventStats
    integrity: Integrity

    @property
    def event_rows(self) -> tuple[AuditRecord, ...]:
        return (*self.stats.head, *self.stats.tail)

    @property
    def duties(self) -> tuple[DutyCheck, ...]:
        return duty_checks(self.snapshot.requests)

    def scope_rows(self) -> list[tuple[str, str]]:
        s = self.scope
        policies = ", ".join(f"{p.name} {p.sha256}" for p in self.snapshot.policies)
        return [
            ("Models", ", ".join(s.models) or "all models"),
            ("Request", s.request_id or "all requests"),
            ("Period (UTC)", f"{s.since_ts or 'start of log'} to {s.until_ts or 'export time'}"),
            ("Events exported", f"seq {self.stats.first_seq} to {self.stats.last_seq}"),
            ("Events in scope", f"{self.stats.in_scope} of {self.stats.count}"),
            ("Exported by", s.exporter or "unknown"),
            ("Generated at (UTC)", self.generated_at),
            ("Application version", s.app_version or "unknown"),
            ("Policy hashes", policies or "none recorded"),
        ]

    def integrity_rows(self) -> list[tuple[str, str]]:
        i = self.integrity
        result = "VERIFIED" if i.ok else f"FAILED: {i.slice_reason or 'see below'}"
        if self.integrity.slice_ok and not i.prefix_ok:
            result = "FAILED: the chain before the exported period does not verify"
        elif i.slice_ok and i.prefix_ok and not i.linked:
            result = "FAILED: the exported period does not link to the chain before it"
        cp = i.checkpoint
        return [
            ("Chain origin", i.origin),
            ("Database chain head", f"seq {i.db_head_seq}, {i.db_head_hash}"),
            ("Verification (genesis to last exported seq)", result),
            ("Checkpoint", f"seq {cp['last_seq']}, head {cp['head_hash']}"),
            ("Checkpoint signed at (UTC)", str(cp["signed_at"])),
            ("Signature", f"{cp['alg']}, key id {cp['key_id']}"),
            ("Public key (raw, base64)", i.public_key_b64),
            ("Checkpoint signature", i.checkpoint_signature),
            (
                "Authenticity of this report",
                "report.pdf, report.html, events.jsonl, events.csv and the checkpoint are "
                "listed with their SHA-256 in manifest.json, which is signed with the key "
                "above (manifest.sig); check with `python -m app.cli audit verify-bundle "
                "BUNDLE.zip --public-key KEY.pub`, which needs neither the database nor MLflow.",
            ),
        ]
