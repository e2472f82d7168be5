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
