"""Canonical JSON, audit chain hashing and verification. Standard library only.

This module is the contract between the database (which stores the chain), the exports (which
carry it) and the offline verifier (which needs nothing but an export and a public key).

An entry hashes its predecessor and its own canonical fields:

    payload_hash = SHA-256(canonical payload text)
    entry_hash   = SHA-256(DOMAIN_TAG || prev_hash || 0x00 || canonical(fields))

where `fields` are seq, ts, actor, action, object_type, object_id, payload_hash and alg. The first
entry chains to GENESIS_HASH. The payload is stored as its canonical text so that verification
hashes bytes instead of re-serialising, which keeps it far above 100,000 events per second.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ALG = "cs-audit-v1"
DOMAIN_TAG = b"countersign.audit.v1\x00"
GENESIS_HASH = "0" * 64


def _reject_non_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("canonical JSON refuses NaN and infinity")
    if isinstance(value, Mapping):
        for item in value.values():
            _reject_non_finite(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _reject_non_finite(item)
    return value


def canonical_json(value: Any) -> str:
    """Serialise `value` canonically: sorted keys, compact separators, no NaN or infinity.

    Raises:
        ValueError: The value holds NaN or infinity, or is not JSON-serialisable.
    """
    _reject_non_finite(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_hex(data: str | bytes) -> str:
    """SHA-256 of text (UTF-8) or bytes, as lowercase hex."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def format_ts(moment: datetime) -> str:
    """The one timestamp form that is hashed: UTC, microseconds, trailing Z."""
    if moment.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


try:  # the C encoder json.dumps itself uses; same output as ensure_ascii=False
    from _json import encode_basestring as _enc
except ImportError:  # pragma: no cover - every CPython ships _json
    from json.encoder import py_encode_basestring as _enc


def _fields_body(
    action: str,
    actor: str,
    alg: str,
    object_id: str,
    object_type: str,
    payload_hash: str,
    seq: int,
    ts: str,
) -> str:
    """Canonical JSON of the hashed fields, byte for byte what json.dumps(sort_keys=True,
    separators=(",", ":"), ensure_ascii=False) gives, written out by hand because verification
    runs it for every entry and the generic encoder is the slowest step."""
    return (
        f'{{"action":{_enc(action)},"actor":{_enc(actor)},"alg":{_enc(alg)},'
        f'"object_id":{_enc(object_id)},"object_type":{_enc(object_type)},'
        f'"payload_hash":{_enc(payload_hash)},"seq":{int(seq)},"ts":{_enc(ts)}}}'
    )


def entry_hash(
    *,
    prev_hash: str,
    seq: int,
    ts: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    payload_hash: str,
    alg: str = ALG,
) -> str:
    """The hash of one chain entry (see the module docstring)."""
    body = _fields_body(action, actor, alg, object_id, object_type, payload_hash, seq, ts)
    return hashlib.sha256(
        DOMAIN_TAG + prev_hash.encode("ascii") + b"\x00" + body.encode("utf-8")
    ).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """One stored chain entry, exactly as persisted and exported."""

    seq: int
    ts: str
    actor: str
    action: str
    object_type: str
    object_id: str
    payload: str  # canonical JSON text
    payload_hash: str
    prev_hash: str
    entry_hash: str
    alg: str = ALG

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "payload": self.payload,
            "payload_hash": self.payload_hash,
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
            "alg": self.alg,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        return cls(
            seq=int(data["seq"]),
            ts=str(data["ts"]),
            actor=str(data["actor"]),
            action=str(data["action"]),
            object_type=str(data["object_type"]),
            object_id=str(data["object_id"]),
            payload=str(data["payload"]),
            payload_hash=str(data["payload_hash"]),
            prev_hash=str(data["prev_hash"]),
            entry_hash=str(data["entry_hash"]),
            alg=str(data.get("alg", ALG)),
        )


def seal(
    *,
    prev_hash: str,
    seq: int,
    moment: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    payload: Mapping[str, Any],
) -> AuditRecord:
    """Build the next chain entry after `prev_hash` (the caller serialises appends)."""
    payload_text = canonical_json(payload)
    p_hash = sha256_hex(payload_text)
    ts = format_ts(moment)
    return AuditRecord(
        seq=seq,
        ts=ts,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        payload=payload_text,
        payload_hash=p_hash,
        prev_hash=prev_hash,
        entry_hash=entry_hash(
            prev_hash=prev_hash,
            seq=seq,
            ts=ts,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            payload_hash=p_hash,
        ),
    )


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of a chain verification.

    `ok` is True when every entry checks out; otherwise `first_broken_seq` names the first bad
    entry and `reason` says what is wrong with it. `last_seq` and `head_hash` describe the last
    entry that verified.
    """

    ok: bool
    count: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str
    first_broken_seq: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "count": self.count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head_hash": self.head_hash,
            "first_broken_seq": self.first_broken_seq,
            "reason": self.reason,
        }


def verify_chain(
    records: Iterable[AuditRecord],
    *,
    start_prev_hash: str = GENESIS_HASH,
    start_seq: int = 1,
) -> VerifyResult:
    """Recompute the chain and stop at the first entry that does not verify.

    Args:
        records: Entries in ascending seq order (a generator is fine: memory stays bounded).
        start_prev_hash: The hash the first entry must chain to (GENESIS_HASH for a full chain,
            the previous entry's hash for a slice such as an export of a period).
        start_seq: The seq the first entry must carry (gap-free from there on).
    """
    prev = start_prev_hash
    expected_seq = start_seq
    count = 0
    first_seq: int | None = None
    last_ok: int | None = None
    sha = hashlib.sha256
    fields_body = _fields_body
    for rec in records:
        if first_seq is None:
            first_seq = rec.seq
        problem = ""
        if rec.seq != expected_seq:
            problem = f"expected seq {expected_seq}, found {rec.seq} (a gap or a reorder)"
        elif rec.prev_hash != prev:
            problem = "prev_hash does not match the previous entry"
        elif sha(rec.payload.encode("utf-8")).hexdigest() != rec.payload_hash:
            problem = "payload does not match payload_hash"
        else:
            body = fields_body(
                rec.action,
                rec.actor,
                rec.alg,
                rec.object_id,
                rec.object_type,
                rec.payload_hash,
                rec.seq,
                rec.ts,
            )
            digest = sha(
                DOMAIN_TAG + prev.encode("ascii") + b"\x00" + body.encode("utf-8")
            ).hexdigest()
            if digest != rec.entry_hash:
                problem = "entry_hash does not match the entry's content"
        if problem:
            return VerifyResult(
                ok=False,
                count=count,
                first_seq=first_seq,
                last_seq=last_ok,
                head_hash=prev,
                first_broken_seq=rec.seq,
                reason=problem,
            )
        prev = rec.entry_hash
        last_ok = rec.seq
        expected_seq += 1
        count += 1
    return VerifyResult(ok=True, count=count, first_seq=first_seq, last_seq=last_ok, head_hash=prev)
