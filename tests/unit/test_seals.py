"""Seals: HMAC-SHA256 under a key the database never sees, with key ids for rotation."""

from __future__ import annotations

from collections import namedtuple

import pytest

from governance.audit import GENESIS_HASH, VerifyResult, seal, verify_chain
from governance.seal_check import SealScan
from governance.seals import NOT_SEALED, Sealer, SealKey, parse_key_text

OLD = SealKey(b"o" * 32)
NEW = SealKey(b"n" * 32)
Row = namedtuple("Row", "seq entry_hash seal")


def test_a_seal_names_its_algorithm_and_key_and_verifies_only_its_own_content() -> None:
    sealer = Sealer(NEW)
    made = sealer.entry("ab" * 32)
    assert made.startswith(f"s1:{NEW.key_id}:")
    assert len(made) <= 96
    assert sealer.check_entry("ab" * 32, made) == ""
    assert sealer.check_entry("cd" * 32, made) == "the seal does not match"
    row = sealer.row("votes", {"approver": "ann", "decision": "approve"})
    assert sealer.check_row("votes", {"approver": "ann", "decision": "approve"}, row) == ""
    assert sealer.check_row("votes", {"approver": "bob", "decision": "approve"}, row) != ""
    assert sealer.check_row("decisions", {"approver": "ann", "decision": "approve"}, row) != ""
    assert sealer.check_entry("ab" * 32, row) != ""  # a row seal is no entry seal


@pytest.mark.parametrize(
    ("seal_text", "problem"),
    [
        (None, NOT_SEALED),
        ("", NOT_SEALED),
        ("s2:abc:00", "unknown seal algorithm 's2'"),
        ("s1:0123456789abcdef:00", "sealed with a key this server does not hold"),
    ],
)
def test_a_missing_or_foreign_seal_is_named(seal_text: str | None, problem: str) -> None:
    assert Sealer(NEW).check_entry("ab" * 32, seal_text).startswith(problem)


def test_after_a_rotation_old_seals_verify_and_new_ones_use_the_new_key() -> None:
    old_seal = Sealer(OLD).entry("ab" * 32)
    rotated = Sealer(NEW, [OLD])
    assert rotated.check_entry("ab" * 32, old_seal) == ""
    assert rotated.entry("ab" * 32).split(":")[1] == NEW.key_id
    assert Sealer(NEW).check_entry("ab" * 32, old_seal).startswith("sealed with a key")


def test_the_key_is_never_printed_and_short_or_garbled_keys_are_refused() -> None:
    assert "nnnn" not in repr(NEW)
    assert "6e6e" not in repr(Sealer(NEW))
    assert parse_key_text("6e" * 32 + "\n").secret == b"n" * 32
    with pytest.raises(ValueError, match="at least 32 bytes"):
        parse_key_text("6e" * 16)
    with pytest.raises(ValueError, match="hexadecimal"):
        parse_key_text("not a key")


def _chain(n: int, sealer: Sealer) -> list[object]:
    from datetime import UTC, datetime

    out, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        rec = seal(
            prev_hash=prev,
            seq=seq,
            moment=datetime(2026, 12, 1, tzinfo=UTC),
            actor="ann",
            action="vote_recorded",
            object_type="request",
            object_id="r1",
            payload={"n": seq},
        )
        prev = rec.entry_hash
        out.append(rec)
    return out


def _scan(records: list[object], seals: dict[int, str | None], legacy: int = 0) -> VerifyResult:
    rows = [
        type("R", (), {**rec.as_dict(), "seal": seals.get(rec.seq)})()  # type: ignore[attr-defined]
        for rec in records
    ]
    scan = SealScan(Sealer(NEW), legacy)
    return scan.result(verify_chain(scan.checked(rows)))


def test_the_scan_names_the_first_entry_without_a_valid_seal_and_stops_before_it() -> None:
    sealer = Sealer(NEW)
    records = _chain(5, sealer)
    good = {r.seq: sealer.entry(r.entry_hash) for r in records}  # type: ignore[attr-defined]
    assert _scan(records, good).ok
    forged = {**good, 4: good[3]}  # a replayed seal
    result = _scan(records, forged)
    assert (result.ok, result.first_broken_seq, result.last_seq) == (False, 4, 3)
    assert "the seal does not match" in result.reason
    unsealed = {**good, 2: None}
    result = _scan(records, unsealed)
    assert (result.first_broken_seq, result.count) == (2, 1)
    assert result.reason.startswith("the entry is not sealed")
    # entries an audit_sealed_existing entry vouches for may be unsealed, but not forged
    assert _scan(records, {**good, 1: None, 2: None}, legacy=2).ok
    assert _scan(records, {**good, 1: None, 2: good[1]}, legacy=2).first_broken_seq == 2


@pytest.mark.parametrize("size", [32, 64, 100])
def test_entry_seals_are_standard_hmac_sha256_for_any_key_length(size: int) -> None:
    import hmac

    key = SealKey(bytes(range(size)))
    mac = hmac.digest(key.secret, b"countersign.seal.entry.v1\x00" + b"ab" * 32, "sha256").hex()
    assert Sealer(key).entry("ab" * 32) == f"s1:{key.key_id}:{mac}"
    assert Sealer(key).entry_checker()("ab" * 32, f"s1:{key.key_id}:{mac}") == ""


def test_a_sealer_travels_to_a_worker_process_with_its_keys() -> None:
    import pickle

    sealer = Sealer(NEW, [OLD])
    copy = pickle.loads(pickle.dumps(sealer))  # noqa: S301 - our own object, as the pool does
    assert copy.entry("ab" * 32) == sealer.entry("ab" * 32)
    assert copy.check_entry("ab" * 32, Sealer(OLD).entry("ab" * 32)) == ""
