"""The audit chain contract shared by the database, the exports and the offline verifier."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from governance.audit import (
    ALG,
    DOMAIN_TAG,
    GENESIS_HASH,
    AuditRecord,
    _fields_body,
    canonical_json,
    entry_hash,
    seal,
    verify_chain,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n: int) -> list[AuditRecord]:
    records, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        rec = seal(
            prev_hash=prev,
            seq=seq,
            moment=T0 + timedelta(seconds=seq),
            actor="erin" if seq % 2 else "frank",
            action="vote_recorded",
            object_type="request",
            object_id=f"req-{seq}",
            payload={"decision": "approve", "comment": f"checked {seq}", "n": seq},
        )
        records.append(rec)
        prev = rec.entry_hash
    return records


def test_canonical_json_sorts_keys_and_has_no_spaces() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": "é", "c": None}]}) == (
        '{"a":[1,{"c":null,"d":"é"}],"b":1}'
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {"x": [float("-inf")]}])
def test_canonical_json_refuses_nan_and_infinity(bad: object) -> None:
    with pytest.raises(ValueError, match="NaN"):
        canonical_json(bad)


@pytest.mark.parametrize(
    "text",
    ["plain", 'quote " and \\ backslash', "tab\tnew\nline", "\x00\x1f control", "é ü 中文 🙂", ""],
)
def test_the_hand_written_field_encoding_equals_json_dumps(text: str) -> None:
    fields = {
        "action": text,
        "actor": text,
        "alg": ALG,
        "object_id": text,
        "object_type": "request",
        "payload_hash": "ab" * 32,
        "seq": 12345,
        "ts": "2026-01-01T00:00:00.000000Z",
    }
    expected = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert _fields_body(**fields) == expected


def test_the_entry_hash_is_pinned_for_offline_verifiers() -> None:
    # Changing this value breaks every exported bundle: only a new `alg` may change it.
    got = entry_hash(
        prev_hash=GENESIS_HASH,
        seq=1,
        ts="2026-01-01T00:00:00.000000Z",
        actor="erin",
        action="vote_recorded",
        object_type="request",
        object_id="r-1",
        payload_hash="ab" * 32,
    )
    body = json.dumps(
        {
            "action": "vote_recorded",
            "actor": "erin",
            "alg": ALG,
            "object_id": "r-1",
            "object_type": "request",
            "payload_hash": "ab" * 32,
            "seq": 1,
            "ts": "2026-01-01T00:00:00.000000Z",
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    manual = hashlib.sha256(
        DOMAIN_TAG + GENESIS_HASH.encode() + b"\x00" + body.encode()
    ).hexdigest()
    assert got == manual == "67c1b0d9802a0aacc476bd2639e877c4651ac238538ef892fbba61c4e13b0ba8"


def test_an_intact_chain_verifies_to_its_head() -> None:
    records = chain(20)
    result = verify_chain(records)
    assert result.ok
    assert (result.count, result.first_seq, result.last_seq) == (20, 1, 20)
    assert result.head_hash == records[-1].entry_hash


def test_a_slice_verifies_from_the_hash_before_it() -> None:
    records = chain(20)
    result = verify_chain(records[5:], start_prev_hash=records[4].entry_hash, start_seq=6)
    assert result.ok
    assert result.count == 15


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: replace(r, actor="mallory"), "entry_hash"),
        (lambda r: replace(r, payload=r.payload.replace("approve", "reject")), "payload"),
        (lambda r: replace(r, ts="2027-01-01T00:00:00.000000Z"), "entry_hash"),
        (lambda r: replace(r, prev_hash="f" * 64), "prev_hash"),
        (lambda r: replace(r, seq=99), "expected seq"),
    ],
    ids=["actor", "payload", "time", "prev_hash", "seq"],
)
def test_an_altered_entry_is_named_by_its_seq(change, reason: str) -> None:
    records = chain(10)
    records[6] = change(records[6])
    result = verify_chain(records)
    assert not result.ok
    assert result.first_broken_seq in (7, 99)
    assert reason in result.reason
    assert result.last_seq == 6
    assert result.head_hash == records[5].entry_hash


def test_a_removed_entry_breaks_the_chain_at_the_gap() -> None:
    records = chain(10)
    del records[3]
    result = verify_chain(records)
    assert not result.ok
    assert result.first_broken_seq == 5
    assert "expected seq 4" in result.reason
