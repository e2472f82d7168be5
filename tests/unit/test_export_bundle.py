"""The signed audit bundle and its offline verifier, on real sealed chains and real keys."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypdf import PdfReader

from app.errors import InvalidInput, NotFound
from app.export import ExportScope, MemorySource, build_bundle, verify_bundle
from app.export.signing import sign
from app.export.verify import BundleProblem
from tests.export_data import T0, make_chain, rewrite, sample_snapshot

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 400  # more than the report shows in full (150 from each end), so it must summarise


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def source() -> MemorySource:
    return MemorySource(make_chain(EVENTS), sample_snapshot())


@pytest.fixture(scope="module")
def bundle(source: MemorySource, key: Ed25519PrivateKey) -> bytes:
    scope = ExportScope(exporter="auditor ada", app_version="0.1.0")
    return build_bundle(source, scope, key)


def _verify(data: bytes, key: Ed25519PrivateKey) -> str:
    try:
        return verify_bundle(io.BytesIO(data), key.public_key()).line()
    except BundleProblem as problem:
        return f"FAILED: {problem}"


def _member(data: bytes, name: str) -> bytes:
    return zipfile.ZipFile(io.BytesIO(data)).read(name)


def test_a_clean_bundle_verifies_with_the_public_key(bundle: bytes, key: Ed25519PrivateKey):
    assert _verify(bundle, key).startswith(f"OK: {EVENTS} events, seq 1-{EVENTS}")


def test_the_bundle_holds_every_file_and_the_manifest_hashes_them(bundle: bytes):
    names = set(zipfile.ZipFile(io.BytesIO(bundle)).namelist())
    assert names == {
        "report.pdf",
        "report.html",
        "events.csv",
        "events.jsonl",
        "manifest.json",
        "manifest.sig",
        "checkpoint.json",
        "checkpoint.sig",
    }
    manifest = json.loads(_member(bundle, "manifest.json"))
    assert set(manifest["files"]) == names - {"manifest.json", "manifest.sig"}
    assert manifest["events"]["count"] == EVENTS
    assert manifest["integrity"]["chain_verified_from_genesis"] is True


def test_events_jsonl_holds_one_audit_record_per_line_in_ascending_seq(
    bundle: bytes, source: MemorySource
):
    lines = _member(bundle, "events.jsonl").decode().splitlines()
    assert [json.loads(line) for line in lines] == [r.as_dict() for r in source.records]


def test_another_key_cannot_verify_the_bundle(bundle: bytes):
    assert _verify(bundle, Ed25519PrivateKey.generate()) == (
        "FAILED: manifest.sig does not verify with this public key"
    )


def _edit_csv_row(data: bytes) -> bytes:
    return data.replace(b",alice,", b",mallory,", 1)


def test_an_edited_csv_row_is_caught(bundle: bytes, key: Ed25519PrivateKey):
    assert _verify(rewrite(bundle, "events.csv", _edit_csv_row), key) == (
        "FAILED: events.csv: SHA-256 does not match the manifest (file altered)"
    )


def test_an_edited_csv_row_is_caught_even_in_a_re_signed_manifest(
    bundle: bytes, key: Ed25519PrivateKey
):
    forged = rewrite(bundle, "events.csv", _edit_csv_row, rehash=True, resign_with=key)
    assert _verify(forged, key) == (
        "FAILED: events.csv row 3 (seq 3) differs from events.jsonl in actor"
    )


def _drop_line(number: int):
    def change(data: bytes) -> bytes:
        lines = data.splitlines(keepends=True)
        del lines[number - 1]
        return b"".join(lines)

    return change


def test_a_removed_jsonl_line_is_caught(bundle: bytes, key: Ed25519PrivateKey):
    assert _verify(rewrite(bundle, "events.jsonl", _drop_line(10)), key) == (
        "FAILED: events.jsonl: SHA-256 does not match the manifest (file altered)"
    )


def test_a_removed_jsonl_line_breaks_the_chain_even_in_a_re_signed_manifest(
    bundle: bytes, key: Ed25519PrivateKey
):
    forged = rewrite(bundle, "events.jsonl", _drop_line(10), rehash=True, resign_with=key)
    assert _verify(forged, key) == (
        "FAILED: events.jsonl: chain broken at seq 11: expected seq 10, found 11 "
        "(a gap or a reorder)"
    )


def test_a_re_hashed_manifest_without_a_new_signature_is_caught(
    bundle: bytes, key: Ed25519PrivateKey
):
    forged = rewrite(bundle, "events.csv", _edit_csv_row, rehash=True)
    assert _verify(forged, key) == "FAILED: manifest.sig does not verify with this public key"


def test_a_checkpoint_signed_with_another_key_is_caught(bundle: bytes, key: Ed25519PrivateKey):
    other = Ed25519PrivateKey.generate()
    checkpoint = _member(bundle, "checkpoint.json")
    forged = rewrite(
        bundle,
        "checkpoint.sig",
        lambda _: sign(other, checkpoint).encode(),
        rehash=True,
        resign_with=key,
    )
    assert _verify(forged, key) == ("FAILED: checkpoint.sig does not verify with this public key")


def test_a_checkpoint_for_another_head_is_caught(bundle: bytes, key: Ed25519PrivateKey):
    body = json.loads(_member(bundle, "checkpoint.json"))
    body["last_seq"] = EVENTS + 5
    new = json.dumps(body).encode()
    forged = rewrite(bundle, "checkpoint.json", lambda _: new, rehash=True)
    forged = rewrite(
        forged, "checkpoint.sig", lambda _: sign(key, new).encode(), rehash=True, resign_with=key
    )
    assert _verify(forged, key).startswith(
        f"FAILED: checkpoint (seq {EVENTS + 5}) does not match the last event (seq {EVENTS}"
    )


def test_a_file_the_manifest_does_not_know_is_refused(bundle: bytes, key: Ed25519PrivateKey):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        src = zipfile.ZipFile(io.BytesIO(bundle))
        for name in src.namelist():
            zf.writestr(name, src.read(name))
        zf.writestr("extra.txt", b"hello")
    assert _verify(out.getvalue(), key) == "FAILED: the bundle holds unexpected files: extra.txt"


def _pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(_member(data, "report.pdf")))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_pdf_names_every_request_and_its_signers(bundle: bytes):
    text = _pdf_text(bundle)
    for request in sample_snapshot().requests:
        assert f"Request {request.request_id}" in text
        for signature in request.signatures:
            assert signature.printed_name in text
            assert signature.signer in text
    for heading in (
        "Separation of duties",
        "Integrity",
        "Regulatory mapping",
        "11.50",
        "A.6.2.8",
        "SR 26-2",
        "Art. 12",
        "Annex IV",
    ):
        assert heading in text
    assert "more are in events.csv and events.jsonl" in text


def test_the_html_report_escapes_user_text(bundle: bytes):
    html = _member(bundle, "report.html").decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert "http" not in html
    assert "Alice Approver" in html
    assert "VIOLATED" not in html


def test_a_model_filter_keeps_the_contiguous_period_and_marks_the_scope(
    source: MemorySource, key: Ed25519PrivateKey
):
    data = build_bundle(source, ExportScope(models=("churn",)), key)
    assert _verify(data, key).startswith(f"OK: {EVENTS} events")
    rows = list(csv.DictReader(io.StringIO(_member(data, "events.csv").decode())))
    assert len(rows) == EVENTS
    assert {r["in_scope"] for r in rows if '"model":"churn"' in r["payload"]} == {"1"}
    assert {r["in_scope"] for r in rows if '"model":"credit-risk"' in r["payload"]} == {"0"}
    text = _pdf_text(data)
    assert "Request r-2-churn" in text
    assert "Request r-1-credit-risk" not in text


def test_a_period_exports_a_verifiable_slice_of_the_chain(
    source: MemorySource, key: Ed25519PrivateKey
):
    scope = ExportScope(since=T0 + timedelta(minutes=100), until=T0 + timedelta(minutes=200))
    data = build_bundle(source, scope, key)
    assert _verify(data, key).startswith("OK: 100 events, seq 100-199")


def test_a_broken_chain_is_exported_as_evidence_and_the_verifier_names_the_seq(
    key: Ed25519PrivateKey,
):
    records = make_chain(40)
    records[16] = replace(records[16], actor="mallory")  # altered in the database
    data = build_bundle(MemorySource(records, sample_snapshot()), ExportScope(), key)
    assert json.loads(_member(data, "manifest.json"))["integrity"]["problem"].startswith(
        "seq 17: entry_hash does not match"
    )
    assert _verify(data, key) == (
        "FAILED: events.jsonl: chain broken at seq 17: entry_hash does not match the entry's "
        "content"
    )


def test_an_empty_period_and_an_unknown_request_are_refused(
    source: MemorySource, key: Ed25519PrivateKey
):
    with pytest.raises(InvalidInput, match="no audit events between"):
        build_bundle(source, ExportScope(since=T0 + timedelta(days=400)), key)
    with pytest.raises(NotFound, match="request nope not found"):
        build_bundle(source, ExportScope(request_id="nope"), key)
    with pytest.raises(InvalidInput, match="audit log is empty"):
        build_bundle(MemorySource(), ExportScope(), key)


def test_the_verifier_imports_neither_the_database_nor_mlflow():
    code = (
        "import sys, app.export.verify, app.commands.exports;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('sqlalchemy','mlflow')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_damaged_member_is_named_not_a_traceback(bundle: bytes, key: Ed25519PrivateKey):
    damaged = bytearray(bundle)
    start = bytes(damaged).index(b"events.jsonl") + 200  # inside the compressed data
    damaged[start : start + 64] = b"\x00" * 64
    assert _verify(bytes(damaged), key).startswith("FAILED: ")


def test_a_large_payload_survives_the_csv_round_trip(key: Ed25519PrivateKey):
    from governance.audit import GENESIS_HASH, seal

    big = seal(
        prev_hash=GENESIS_HASH,
        seq=1,
        moment=T0,
        actor="a",
        action="request_created",
        object_type="request",
        object_id="r1",
        payload={"evidence": "x" * 300_000},
    )
    data = build_bundle(MemorySource([big], sample_snapshot()), ExportScope(), key)
    assert _verify(data, key).startswith("OK: 1 events")


class _FailingSource(MemorySource):
    def iter_events(self, from_seq: int, to_seq: int):
        for rec in super().iter_events(from_seq, to_seq):
            if rec.seq == 7:
                raise RuntimeError("database went away")
            yield rec


def test_a_store_failure_mid_export_surfaces_as_itself(key: Ed25519PrivateKey):
    source = _FailingSource(make_chain(20), sample_snapshot())
    with pytest.raises(RuntimeError, match="database went away"):
        build_bundle(source, ExportScope(), key)


def test_the_export_columns_follow_the_audit_record():
    from app.export.events import RECORD_FIELDS
    from governance.audit import AuditRecord

    assert tuple(AuditRecord.__dataclass_fields__) == RECORD_FIELDS
    assert tuple(make_chain(1)[0].as_dict()) == RECORD_FIELDS


# Text people type that a spreadsheet would run: in a justification and a vote comment (inside
# the JSON payload, whose cell starts with "{"), and where it stands at the start of a cell: the
# name tried at sign-in (object_id), a refused actor, a model name.
HOSTILE = (
    "=cmd|' /C calc'!A0",
    "+1 from me",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-1 looks wrong",
    "'quoted already",
    "\tindented",
    "\rcarriage",
)
# A line break inside a cell must not start a new row (whose first cell could be a formula).
BREAKERS = ("x\r=1+1", "y\n@SUM(1)", "z\r\n-2")


def _hostile_chain(names: tuple[str, ...] = HOSTILE, breakers: tuple[str, ...] = BREAKERS):
    from governance.audit import GENESIS_HASH, seal

    events = [
        ("rita", "request_created", "request", "r-1", {"justification": HOSTILE[0]}),
        ("alice", "vote_recorded", "request", "r-1", {"comment": HOSTILE[1]}),
        ("bob", "vote_recorded", "request", "r-1", {"comment": HOSTILE[2]}),
        ("carol", "vote_recorded", "request", "r-1", {"comment": HOSTILE[3]}),
        ("dana", "vote_recorded", "request", "r-1", {"comment": HOSTILE[4]}),
        *(
            ("anonymous", "login_failed", "user", name, {"reason": "unknown user"})
            for name in names
        ),
        ("-mallory", "action_refused", "audit", "chain", {"attempted": "export"}),
        ("rita", "request_created", "request", "r-2", {"model": "=evil", "justification": "ok"}),
        ("ci", "version_registered", "model", "@evil/3", {"model": "@evil"}),
        *(("anonymous", "login_failed", "user", name, {"reason": "unknown"}) for name in breakers),
    ]
    records, prev = [], GENESIS_HASH
    for seq, (actor, action, object_type, object_id, payload) in enumerate(events, start=1):
        rec = seal(
            prev_hash=prev,
            seq=seq,
            moment=T0 + timedelta(minutes=seq),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            payload=payload,
        )
        records.append(rec)
        prev = rec.entry_hash
    return records


@pytest.fixture(scope="module")
def hostile(key: Ed25519PrivateKey) -> tuple[list, bytes]:
    records = _hostile_chain()
    snapshot = sample_snapshot()
    request = replace(snapshot.requests[0], justification=f"{HOSTILE[0]} <script>alert(1)</script>")
    snapshot = replace(snapshot, requests=(request, *snapshot.requests[1:]))
    return records, build_bundle(MemorySource(records, snapshot), ExportScope(), key)


def _csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_member(data, "events.csv").decode(), newline="")))[1:]


def test_no_csv_cell_starts_like_a_formula_and_every_text_cell_restores_to_the_jsonl(hostile):
    from app.export.csv_cells import FORMULA_STARTS, restore
    from app.export.events import RECORD_FIELDS

    records, data = hostile
    rows = _csv_rows(data)
    assert len(rows) == len(records)
    for row, rec in zip(rows, records, strict=True):
        assert row[0] == str(rec.seq)  # numeric columns stay numbers
        assert row[-1] == "1"
        assert not any(cell.startswith(FORMULA_STARTS) for cell in row)
        values = rec.as_dict()
        assert [restore(cell) for cell in row[1:-1]] == [values[f] for f in RECORD_FIELDS[1:]]


def test_user_text_at_the_start_of_a_cell_gets_one_quote_and_the_jsonl_keeps_it(hostile):
    records, data = hostile
    by_seq = {int(row[0]): row for row in _csv_rows(data)}
    failed = [r for r in records if r.object_id in HOSTILE]
    assert [by_seq[r.seq][5] for r in failed] == [f"'{text}" for text in HOSTILE]
    refused = next(r for r in records if r.action == "action_refused")
    assert by_seq[refused.seq][2] == "'-mallory"
    registered = next(r for r in records if r.action == "version_registered")
    assert by_seq[registered.seq][5] == "'@evil/3"
    lines = [json.loads(line) for line in _member(data, "events.jsonl").decode().splitlines()]
    assert [line["object_id"] for line in lines if line["action"] == "login_failed"] == [
        *HOSTILE,
        *BREAKERS,
    ]
    assert lines == [r.as_dict() for r in records]


def test_a_line_break_inside_a_cell_stays_inside_its_quoted_cell(hostile):
    _, data = hostile
    rows = _csv_rows(data)
    assert [row[5] for row in rows[-len(BREAKERS) :]] == list(BREAKERS)
    text = _member(data, "events.csv").decode()
    for name in BREAKERS:
        assert f',"{name}",' in text


def test_a_justification_and_comments_stay_inside_the_json_payload_cell(hostile):
    records, data = hostile
    payloads = [row[6] for row in _csv_rows(data)[:5]]
    assert all(cell.startswith("{") for cell in payloads)
    assert payloads == [r.payload for r in records[:5]]
    assert [json.loads(p).get("justification", json.loads(p).get("comment")) for p in payloads] == [
        *HOSTILE[:5]
    ]


def test_a_bundle_with_hostile_text_verifies(hostile, key: Ed25519PrivateKey):
    records, data = hostile
    assert _verify(data, key).startswith(f"OK: {len(records)} events, seq 1-{len(records)}")


def test_the_reports_escape_a_hostile_justification(hostile):
    _, data = hostile
    html = _member(data, "report.html").decode()
    assert "<script" not in html.lower()
    assert "=cmd|&#x27; /C calc&#x27;!A0 &lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The PDF is text: the justification prints as written, nothing in it runs.
    assert "=cmd|' /C calc'!A0 <script>alert(1)</script>" in _pdf_text(data)


def _unguard(login_name: str):
    def change(data: bytes) -> bytes:
        guarded = f",'{login_name},".encode()
        assert data.count(guarded) == 1
        return data.replace(guarded, f",{login_name},".encode())

    return change


def test_a_csv_cell_whose_guard_was_removed_is_caught_naming_the_row(
    hostile, key: Ed25519PrivateKey
):
    records, data = hostile
    seq = next(r.seq for r in records if r.object_id == HOSTILE[0])
    assert _verify(rewrite(data, "events.csv", _unguard(HOSTILE[0])), key) == (
        "FAILED: events.csv: SHA-256 does not match the manifest (file altered)"
    )
    forged = rewrite(data, "events.csv", _unguard(HOSTILE[0]), rehash=True, resign_with=key)
    assert _verify(forged, key) == (
        f"FAILED: events.csv row {seq} (seq {seq}) differs from events.jsonl in object_id "
        "(the leading ' the format writes before this value is missing)"
    )


def test_a_quote_added_to_a_plain_csv_cell_is_caught(bundle: bytes, key: Ed25519PrivateKey):
    def quote(data: bytes) -> bytes:
        return data.replace(b",alice,", b",'alice,", 1)

    forged = rewrite(bundle, "events.csv", quote, rehash=True, resign_with=key)
    assert _verify(forged, key) == (
        "FAILED: events.csv row 3 (seq 3) differs from events.jsonl in actor "
        "(a leading ' the format does not write before this value)"
    )


def _set_format(fmt: object):
    def change(data: bytes) -> bytes:
        manifest = json.loads(data)
        manifest["format"] = fmt
        return json.dumps(manifest, indent=2, sort_keys=True).encode()

    return change


def _raw_csv(data: bytes) -> bytes:
    """events.csv as format /1 wrote it: text cells as they were."""
    from app.export.csv_cells import restore

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    reader = csv.reader(io.StringIO(data.decode(), newline=""))
    writer.writerow(next(reader))
    for row in reader:
        writer.writerow([row[0], *(restore(cell) for cell in row[1:-1]), row[-1]])
    return out.getvalue().encode()


def test_a_bundle_of_the_first_format_with_raw_cells_still_verifies(key: Ed25519PrivateKey):
    # Format /1 wrote cells raw with "\n" line ends, so a CR in a cell broke its rows: no CR here.
    records = _hostile_chain(HOSTILE[:-1], breakers=())
    data = build_bundle(MemorySource(records, sample_snapshot()), ExportScope(), key)
    old = rewrite(data, "manifest.json", _set_format("countersign-audit-bundle/1"))
    old = rewrite(old, "events.csv", _raw_csv, rehash=True, resign_with=key)
    assert b"\n6,2026-11-02T09:06:00.000000Z,anonymous,login_failed,user,=cmd" in _member(
        old, "events.csv"
    )
    assert _verify(old, key).startswith(f"OK: {len(records)} events")
    # The same raw cells in a bundle of the current format are not what its exporter writes.
    current = rewrite(data, "events.csv", _raw_csv, rehash=True, resign_with=key)
    assert _verify(current, key).startswith(
        "FAILED: events.csv row 6 (seq 6) differs from events.jsonl in object_id"
    )


@pytest.mark.parametrize("fmt", ["countersign-audit-bundle/9", None, 2])
def test_a_manifest_of_an_unknown_format_is_refused(
    bundle: bytes, key: Ed25519PrivateKey, fmt: object
):
    forged = rewrite(bundle, "manifest.json", _set_format(fmt), resign_with=key)
    assert _verify(forged, key) == (
        f"FAILED: manifest.json names an unknown bundle format: {fmt!r}"
    )


def test_the_manifest_states_the_csv_rule(bundle: bytes):
    manifest = json.loads(_member(bundle, "manifest.json"))
    assert manifest["format"] == "countersign-audit-bundle/2"
    assert manifest["events_csv"]["numeric_columns"] == ["seq", "in_scope"]
    rule = manifest["events_csv"]["text_cells"]
    assert "=, +, -, @, TAB, CR or '" in rule
    assert "remove exactly one leading '" in rule
