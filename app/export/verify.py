"""The offline verifier: a bundle and a public key, nothing else (no database, no MLflow).

It checks, in this order, and names the FIRST problem it meets:
1. the zip holds exactly the members of the bundle format, each once, and nothing else: no
   duplicate names, no bytes outside its listed members (`app.export.zip_layout`);
2. manifest.sig is a valid signature of manifest.json by the given key (or one of the given
   keys), and the manifest names a bundle format this verifier knows;
3. the manifest lists exactly the members, and every member's SHA-256 and size match it;
4. checkpoint.sig is a valid signature of checkpoint.json by the same key;
5. events.jsonl is one unbroken chain slice from its first to its last event (each line's
   prev_hash links to the line before, every hash recomputes), matching the manifest's range;
6. events.csv says the same as events.jsonl, row by row and field by field, each text cell in
   the spreadsheet-safe form its bundle format prescribes (`app.export.csv_cells`);
7. the checkpoint names the slice's last seq and its entry hash, and the manifest's origin;
8. the manifest says the exporter verified the chain from genesis to the slice's end (a slice
   of a period verifies on its own even when the chain before it is broken);
9. each checkpoint the auditor kept from earlier (`app.export.checkpoints`) is signed by one of
   the given keys, and events.jsonl holds its head hash at its seq; a checkpoint whose seq lies
   outside the slice is reported "not covered", and at least one must be covered.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.export.checkpoints import Checkpoint, CheckpointCheck, bundle_verdict, compare
from app.export.csv_cells import NUMERIC_COLUMNS, neutralise, restore
from app.export.events import BUNDLE_FORMAT, CSV_FIELDS, MEMBERS, RECORD_FIELDS
from app.export.signing import key_id, signature_valid
from app.export.zip_layout import duplicate_names, layout_problem
from governance.audit import AuditRecord, verify_chain

SIGNED = ("manifest.json", "manifest.sig")
EXPECTED = frozenset((*SIGNED, *MEMBERS))


SMALL_MEMBER_BYTES = 16 << 20
CSV_FIELD_LIMIT = 1 << 30
# How each bundle format writes a text cell of events.csv: /1 (older exports) as it was.
CSV_TEXT_CELL: dict[str, Callable[[str], str]] = {
    "countersign-audit-bundle/1": str,
    BUNDLE_FORMAT: neutralise,
}
IS_TEXT = tuple(name not in NUMERIC_COLUMNS for name in RECORD_FIELDS)


class BundleProblem(Exception):
    """The first thing wrong with a bundle; the message is one line."""


@dataclass(frozen=True)
class BundleCheck:
    """A bundle that verified: what it proves."""

    events: int
    first_seq: int
    last_seq: int
    head_hash: str
    key_id: str
    origin: str
    checkpoints: tuple[CheckpointCheck, ...] = ()

    def line(self) -> str:
        """One line, plus one per checkpoint compared (matched or not covered)."""
        lines = [
            f"OK: {self.events} events, seq {self.first_seq}-{self.last_seq}, head "
            f"{self.head_hash}, checkpoint signed by key {self.key_id}"
        ]
        lines += [f"  {check.line()}" for check in self.checkpoints]
        return "\n".join(lines)


def _json(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise BundleProblem(f"{name} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise BundleProblem(f"{name} is not a JSON object")
    return value


def _digest(zf: zipfile.ZipFile, name: str) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    with zf.open(name) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def _check_files(zf: zipfile.ZipFile, manifest: dict[str, Any]) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleProblem("manifest.json lists no files")
    if extra := sorted(set(files) - set(MEMBERS)):
        raise BundleProblem(f"manifest.json lists files a bundle does not hold: {', '.join(extra)}")
    for name in sorted(EXPECTED - set(SIGNED)):
        entry = files.get(name)
        if not isinstance(entry, dict):
            raise BundleProblem(f"manifest.json does not list {name}")
        # The signed manifest says how large each member is: nothing larger is ever inflated
        # (a crafted member could otherwise expand to gigabytes before its hash is compared).
        if zf.getinfo(name).file_size != entry.get("bytes"):
            raise BundleProblem(f"{name}: SHA-256 does not match the manifest (file altered)")
        digest, size = _digest(zf, name)
        if digest != entry.get("sha256") or size != entry.get("bytes"):
            raise BundleProblem(f"{name}: SHA-256 does not match the manifest (file altered)")


def _records(fh: IO[bytes]) -> Iterator[tuple[int, AuditRecord]]:
    for number, raw in enumerate(io.TextIOWrapper(fh, encoding="utf-8"), start=1):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise BundleProblem(f"events.jsonl line {number} is not valid JSON") from exc
        if not isinstance(data, dict) or tuple(sorted(data)) != tuple(sorted(RECORD_FIELDS)):
            raise BundleProblem(f"events.jsonl line {number} does not hold an audit record")
        try:
            yield number, AuditRecord.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise BundleProblem(f"events.jsonl line {number} has a malformed field") from exc


def _text_cell(manifest: dict[str, Any]) -> Callable[[str], str]:
    fmt = manifest.get("format")
    text = CSV_TEXT_CELL.get(fmt) if isinstance(fmt, str) else None
    if text is None:
        raise BundleProblem(f"manifest.json names an unknown bundle format: {fmt!r}")
    return text


def _check_events(
    zf: zipfile.ZipFile, text: Callable[[str], str], wanted: frozenset[int], held: dict[int, str]
) -> tuple[AuditRecord, AuditRecord, int]:
    """Verify the chain in events.jsonl and compare events.csv with it, in one pass; collect
    into `held` the entry hash at each seq in `wanted` (the auditor's checkpoints)."""
    # A payload is as large as the store accepted; csv's default limit (128 KiB) is too small.
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    with zf.open("events.jsonl") as jfh, zf.open("events.csv") as cfh:
        rows = csv.reader(io.TextIOWrapper(cfh, encoding="utf-8", newline=""))
        if tuple(next(rows, ())) != CSV_FIELDS:
            raise BundleProblem("events.csv does not start with the expected header")
        records = _records(jfh)
        peek = next(records, None)
        if peek is None:
            raise BundleProblem("events.jsonl holds no events")
        first = last = peek[1]

        def compared() -> Iterator[AuditRecord]:
            nonlocal last
            for number, rec in itertools.chain([peek], records):
                yield rec  # the chain judges the record before the CSV is compared with it
                _compare_row(next(rows, None), rec, number, text)
                if rec.seq in wanted:
                    held[rec.seq] = rec.entry_hash
                last = rec

        result = verify_chain(compared(), start_prev_hash=first.prev_hash, start_seq=first.seq)
        if not result.ok:
            raise BundleProblem(
                f"events.jsonl: chain broken at seq {result.first_broken_seq}: {result.reason}"
            )
        if next(rows, None) is not None:
            raise BundleProblem("events.csv has more rows than events.jsonl")
        return first, last, result.count


def _compare_row(
    row: list[str] | None, rec: AuditRecord, number: int, text: Callable[[str], str]
) -> None:
    if row is None:
        raise BundleProblem(f"events.csv ends before seq {rec.seq} (events.jsonl line {number})")
    if len(row) != len(CSV_FIELDS) or row[-1] not in ("0", "1"):
        raise BundleProblem(f"events.csv row {number} (seq {rec.seq}) is malformed")
    d = rec.as_dict()
    for name, is_text, cell in zip(RECORD_FIELDS, IS_TEXT, row, strict=False):
        value = str(d[name])
        # The exact cell the exporter writes: a guard removed (a formula again) differs too.
        if cell != (text(value) if is_text else value):
            raise BundleProblem(
                f"events.csv row {number} (seq {rec.seq}) differs from events.jsonl in "
                f"{name}{_guard_hint(cell, value)}"
            )


def _guard_hint(cell: str, value: str) -> str:
    if cell == value:
        return " (the leading ' the format writes before this value is missing)"
    if restore(cell) == value:
        return " (a leading ' the format does not write before this value)"
    return ""


def _check_checkpoint(
    cp: dict[str, Any], last: AuditRecord, manifest: dict[str, Any], public: Ed25519PublicKey
) -> None:
    if cp.get("last_seq") != last.seq or cp.get("head_hash") != last.entry_hash:
        raise BundleProblem(
            f"checkpoint (seq {cp.get('last_seq')}) does not match the last event "
            f"(seq {last.seq}, {last.entry_hash})"
        )
    origin = manifest.get("integrity", {}).get("origin")
    if cp.get("origin") != origin:
        raise BundleProblem("checkpoint origin differs from the manifest's origin")
    if cp.get("key_id") != key_id(public):
        raise BundleProblem("checkpoint names a different signing key")


def _check_range(manifest: dict[str, Any], first: AuditRecord, last: AuditRecord, n: int) -> None:
    events = manifest.get("events", {})
    claimed = (events.get("first_seq"), events.get("last_seq"), events.get("count"))
    if claimed != (first.seq, last.seq, n):
        raise BundleProblem(
            f"manifest says seq {claimed[0]}-{claimed[1]} ({claimed[2]} events), "
            f"events.jsonl holds seq {first.seq}-{last.seq} ({n} events)"
        )


def _small(zf: zipfile.ZipFile, name: str) -> bytes:
    # Signatures, manifest and checkpoint are tiny; refuse to inflate a crafted giant into memory.
    if zf.getinfo(name).file_size > SMALL_MEMBER_BYTES:
        raise BundleProblem(f"{name} is implausibly large")
    return zf.read(name)


def verify_bundle(
    path: Path | IO[bytes],
    public: Ed25519PublicKey | Sequence[Ed25519PublicKey],
    checkpoints: Sequence[Checkpoint] = (),
) -> BundleCheck:
    """Check a bundle completely; raise BundleProblem naming the first problem.

    Args:
        path: The zip (a path or a readable binary file).
        public: The exporter's Ed25519 public key, obtained out of band; or several (keys
            rotated out still verify the checkpoints they signed).
        checkpoints: Signed checkpoints the auditor kept from earlier: events.jsonl must hold
            each one's head hash at its seq when its seq lies within the bundle's slice.
    """
    keys = [public] if isinstance(public, Ed25519PublicKey) else list(public)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleProblem(f"not a readable zip file: {exc}") from exc
    with zf:
        try:
            return _verify_open(zf, keys, checkpoints)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise BundleProblem(f"a member of the zip is damaged: {exc}") from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            raise BundleProblem(f"a member of the zip is not valid text: {exc}") from exc


def _check_members(zf: zipfile.ZipFile) -> None:
    if duplicates := duplicate_names(zf):
        raise BundleProblem(f"the zip holds more than one member named {', '.join(duplicates)}")
    names = set(zf.namelist())
    if missing := sorted(EXPECTED - names):
        raise BundleProblem(f"the bundle lacks {', '.join(missing)}")
    if extra := sorted(names - EXPECTED):
        raise BundleProblem(f"the bundle holds unexpected files: {', '.join(extra)}")
    if problem := layout_problem(zf):
        raise BundleProblem(problem)


def _signed_manifest(
    zf: zipfile.ZipFile, keys: Sequence[Ed25519PublicKey]
) -> tuple[dict[str, Any], Ed25519PublicKey]:
    manifest_bytes = _small(zf, "manifest.json")
    signature = _small(zf, "manifest.sig").decode("ascii", "replace")
    key = next((k for k in keys if signature_valid(k, manifest_bytes, signature)), None)
    if key is None:
        which = "this public key" if len(keys) == 1 else "any of the given public keys"
        raise BundleProblem(f"manifest.sig does not verify with {which}")
    return _json(manifest_bytes, "manifest.json"), key


def _check_genesis(manifest: dict[str, Any]) -> None:
    # A slice verifies on its own; only the exporter could check it links to a verified chain.
    integrity = manifest.get("integrity")
    if not isinstance(integrity, dict) or integrity.get("chain_verified_from_genesis") is not True:
        said = integrity.get("problem") if isinstance(integrity, dict) else ""
        raise BundleProblem(
            "the manifest says the exporter could not verify the chain from genesis"
            f"{' (' + str(said) + ')' if said else ''}: these events prove nothing about the chain"
        )


def _verify_open(
    zf: zipfile.ZipFile, keys: Sequence[Ed25519PublicKey], checkpoints: Sequence[Checkpoint]
) -> BundleCheck:
    _check_members(zf)
    manifest, public = _signed_manifest(zf, keys)
    text = _text_cell(manifest)
    _check_files(zf, manifest)
    cp_bytes = _small(zf, "checkpoint.json")
    if not signature_valid(
        public, cp_bytes, _small(zf, "checkpoint.sig").decode("ascii", "replace")
    ):
        raise BundleProblem("checkpoint.sig does not verify with this public key")
    cp = _json(cp_bytes, "checkpoint.json")
    held: dict[int, str] = {}
    wanted = frozenset(c.last_seq for c in checkpoints)
    first, last, count = _check_events(zf, text, wanted, held)
    _check_range(manifest, first, last, count)
    _check_checkpoint(cp, last, manifest, public)
    _check_genesis(manifest)
    origin = str(cp.get("origin", ""))
    if first.seq > 1:  # the first event names its predecessor's hash, which the exporter linked
        held[first.seq - 1] = first.prev_hash
    covered_from = first.seq - 1 if first.seq > 1 else 1
    checks = tuple(
        compare(
            c,
            held,
            keys=keys,
            first_seq=covered_from,
            last_seq=last.seq,
            bundle=True,
            origin=origin,
        )
        for c in checkpoints
    )
    if problem := bundle_verdict(checks, covered_from, last.seq):
        raise BundleProblem(problem)
    return BundleCheck(
        events=count,
        first_seq=first.seq,
        last_seq=last.seq,
        head_hash=last.entry_hash,
        key_id=key_id(public),
        origin=origin,
        checkpoints=checks,
    )
