"""verify-bundle against checkpoints kept from earlier, and bundles whose zip is ambiguous.

Real sealed chains, real Ed25519 keys, real zips; the integration test
tests/integration/test_checkpoint_rewrite.py runs the same checks on databases.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.cli import main
from app.export import ExportScope, MemorySource, build_bundle, verify_bundle
from app.export.checkpoints import (
    CheckpointError,
    load_checkpoints,
    newest,
    parse_checkpoint,
    read_checkpoint,
)
from app.export.signing import signed_checkpoint
from app.export.verify import BundleProblem
from governance.audit import AuditRecord
from tests.export_data import T0, make_chain, resealed, rewrite, sample_snapshot

EVENTS = 60
ORIGIN = f"countersign:{make_chain(1)[0].entry_hash[:32]}"  # what the exporter names the chain


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def chain() -> list[AuditRecord]:
    return make_chain(EVENTS)


@pytest.fixture(scope="module")
def bundle(chain: list[AuditRecord], key: Ed25519PrivateKey) -> bytes:
    return build_bundle(MemorySource(chain, sample_snapshot()), ExportScope(), key)


def checkpoint_file(
    folder: Path, key: Ed25519PrivateKey, seq: int, head: str, name: str = ""
) -> Path:
    body, signature = signed_checkpoint(
        key,
        origin=ORIGIN,
        last_seq=seq,
        head_hash=head,
        signed_at=f"2026-11-02T10:{seq % 60:02d}:00.000000Z",
    )
    path = folder / (name or f"checkpoint-{seq:012d}.json")
    path.write_text(json.dumps({"checkpoint": json.loads(body), "signature": signature}))
    return path


def check(data: bytes, key: Ed25519PrivateKey, *paths: Path) -> str:
    kept = [read_checkpoint(p) for p in paths]
    extra = (kept,) if kept else ()  # without checkpoints: the verifier's original signature
    try:
        return verify_bundle(io.BytesIO(data), key.public_key(), *extra).line()
    except BundleProblem as problem:
        return f"FAILED: {problem}"


def test_a_checkpoint_the_bundle_holds_is_reported_as_held(
    bundle: bytes, chain: list[AuditRecord], key: Ed25519PrivateKey, tmp_path: Path
):
    path = checkpoint_file(tmp_path, key, 20, chain[19].entry_hash)
    lines = check(bundle, key, path).splitlines()
    assert lines[0].startswith(f"OK: {EVENTS} events")
    assert lines[1] == (
        f"  checkpoint seq 20 ({path.name}, signed 2026-11-02T10:20:00.000000Z): the chain "
        f"holds its head {chain[19].entry_hash}"
    )


def test_a_bundle_of_a_rewritten_chain_fails_the_checkpoint_signed_before(
    chain: list[AuditRecord], key: Ed25519PrivateKey, tmp_path: Path
):
    kept = checkpoint_file(tmp_path, key, 30, chain[29].entry_hash)
    # Seq 12 rewritten and every hash from there recomputed: the bundle alone verifies.
    rehashed = resealed([replace(r, actor="mallory") if r.seq == 12 else r for r in chain])
    data = build_bundle(MemorySource(rehashed, sample_snapshot()), ExportScope(), key)
    assert check(data, key).startswith("OK: ")
    assert check(data, key, kept) == (
        f"FAILED: checkpoint seq 30 ({kept.name}, signed 2026-11-02T10:30:00.000000Z): MISMATCH "
        f"at seq 30: the checkpoint signed {chain[29].entry_hash}, the chain holds "
        f"{rehashed[29].entry_hash}"
    )


def test_a_checkpoint_outside_the_period_is_not_covered_and_alone_proves_nothing(
    chain: list[AuditRecord], key: Ed25519PrivateKey, tmp_path: Path
):
    scope = ExportScope(since=T0 + timedelta(minutes=20), until=T0 + timedelta(minutes=40))
    data = build_bundle(MemorySource(chain, sample_snapshot()), scope, key)  # seq 20-39
    early = checkpoint_file(tmp_path, key, 5, chain[4].entry_hash)
    late = checkpoint_file(tmp_path, key, 50, chain[49].entry_hash)
    edge = checkpoint_file(tmp_path, key, 19, chain[18].entry_hash)  # the slice's prev_hash
    assert check(data, key, early, late) == (
        "FAILED: none of the checkpoints (seq 5, 50) lies within the bundle's seq 19-39: "
        "nothing was compared; ask for an export whose period includes one of them"
    )
    lines = check(data, key, early, edge, late).splitlines()
    assert lines[0].startswith("OK: 20 events, seq 20-39")
    assert lines[1].endswith(
        "NOT COVERED: seq 5 is outside the bundle's seq 19-39 (older than the bundle)"
    )
    assert "the chain holds its head" in lines[2]
    assert lines[3].endswith("(newer than the bundle)")


def test_a_checkpoint_altered_after_signing_or_signed_by_another_key_fails(
    bundle: bytes, chain: list[AuditRecord], key: Ed25519PrivateKey, tmp_path: Path
):
    path = checkpoint_file(tmp_path, key, 20, chain[19].entry_hash)
    doc = json.loads(path.read_text())
    doc["checkpoint"]["head_hash"] = chain[20].entry_hash
    path.write_text(json.dumps(doc))
    assert check(bundle, key, path).endswith(
        "BAD SIGNATURE: its signature does not verify with key "
        f"{doc['checkpoint']['key_id']} (the file was altered)"
    )
    other = checkpoint_file(
        tmp_path, Ed25519PrivateKey.generate(), 20, chain[19].entry_hash, "o.json"
    )
    assert "BAD SIGNATURE: signed by key " in check(bundle, key, other)


def test_checkpoints_signed_by_a_rotated_key_verify_when_that_key_is_given_too(
    bundle: bytes, chain: list[AuditRecord], key: Ed25519PrivateKey, tmp_path: Path
):
    old = Ed25519PrivateKey.generate()
    kept = read_checkpoint(checkpoint_file(tmp_path, old, 20, chain[19].entry_hash))
    with pytest.raises(BundleProblem, match="BAD SIGNATURE"):
        verify_bundle(io.BytesIO(bundle), key.public_key(), [kept])
    result = verify_bundle(io.BytesIO(bundle), [old.public_key(), key.public_key()], [kept])
    assert [c.status for c in result.checkpoints] == ["match"]


def test_a_bundle_whose_manifest_says_the_chain_was_not_verified_from_genesis_fails(
    key: Ed25519PrivateKey,
):
    records = make_chain(EVENTS)
    records[4] = replace(records[4], actor="mallory")  # broken before the exported period
    scope = ExportScope(since=T0 + timedelta(minutes=20))
    data = build_bundle(MemorySource(records, sample_snapshot()), scope, key)
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))
    assert manifest["integrity"]["chain_verified_from_genesis"] is False
    assert check(data, key) == (
        "FAILED: the manifest says the exporter could not verify the chain from genesis: these "
        "events prove nothing about the chain"
    )


def members(data: bytes) -> list[tuple[str, bytes]]:
    src = zipfile.ZipFile(io.BytesIO(data))
    return [(name, src.read(name)) for name in src.namelist()]


def zipped(entries: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in entries:
            zf.writestr(name, payload)
    return out.getvalue()


FAKE_REPORT = b"<html><body>All approvals were independent.</body></html>"


def test_a_zip_with_two_members_of_one_name_fails(bundle: bytes, key: Ed25519PrivateKey):
    # Python reads the last report.html (the genuine one); other tools show the first.
    with pytest.warns(UserWarning, match="Duplicate name"):
        data = zipped([("report.html", FAKE_REPORT), *members(bundle)])
    assert check(data, key) == "FAILED: the zip holds more than one member named report.html"


def test_a_zip_glued_behind_another_archive_fails(bundle: bytes, key: Ed25519PrivateKey):
    # A streaming reader shows the glued archive's members; Python sees only the bundle.
    data = zipped([("report.html", FAKE_REPORT)]) + bundle
    assert check(data, key).startswith("FAILED: the zip holds ")
    assert check(data, key).endswith("bytes no member lists, before its first member")


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        (b"appended", "the zip carries a comment or bytes after its end record"),
        (None, "the zip carries a comment or bytes after its end record"),
    ],
)
def test_a_zip_with_bytes_after_its_end_or_a_comment_fails(
    bundle: bytes, key: Ed25519PrivateKey, tail: bytes | None, problem: str
):
    if tail is None:
        out = io.BytesIO(bundle)
        with zipfile.ZipFile(out, "a") as zf:
            zf.comment = b"see http://example.com for the real report"
        data = out.getvalue()
    else:
        data = bundle + tail
    assert check(data, key) == f"FAILED: {problem}"


def test_a_manifest_listing_a_file_the_bundle_does_not_hold_fails(
    bundle: bytes, key: Ed25519PrivateKey
):
    def add(data: bytes) -> bytes:
        manifest = json.loads(data)
        manifest["files"]["notes.txt"] = {"sha256": "0" * 64, "bytes": 0}
        return json.dumps(manifest, indent=2, sort_keys=True).encode()

    forged = rewrite(bundle, "manifest.json", add, resign_with=key)
    assert check(forged, key) == (
        "FAILED: manifest.json lists files a bundle does not hold: notes.txt"
    )


def test_an_unlisted_member_fails(bundle: bytes, key: Ed25519PrivateKey):
    data = zipped([*members(bundle), ("extra.html", FAKE_REPORT)])
    assert check(data, key) == "FAILED: the bundle holds unexpected files: extra.html"


def test_checkpoint_files_are_read_strictly(tmp_path: Path, key: Ed25519PrivateKey):
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(CheckpointError, match="not a checkpoint written by `audit checkpoint`"):
        load_checkpoints([], tmp_path)
    with pytest.raises(CheckpointError, match="holds no checkpoint files"):
        load_checkpoints([], _empty(tmp_path))
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.json")
    (tmp_path / "big.json").write_bytes(b" " * (65 << 10))
    with pytest.raises(CheckpointError, match="too large"):
        read_checkpoint(tmp_path / "big.json")
    body = {"format": "countersign-checkpoint/1", "last_seq": 0, "head_hash": "0" * 64}
    with pytest.raises(CheckpointError, match="w is not a checkpoint"):
        parse_checkpoint(json.dumps({"checkpoint": body, "signature": ""}).encode(), "w")


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a checkpoint, not *.json")
    return folder


def test_newest_is_the_furthest_along_the_chain(tmp_path: Path, key: Ed25519PrivateKey):
    for seq in (3, 12, 7):
        checkpoint_file(tmp_path, key, seq, f"{seq:064d}")
    found = newest(load_checkpoints([], tmp_path))
    assert found is not None
    assert found.last_seq == 12


def test_verify_bundle_with_checkpoints_through_the_cli(
    bundle: bytes, chain: list[AuditRecord], key: Ed25519PrivateKey, tmp_path: Path, capsys
):
    from cryptography.hazmat.primitives import serialization

    public = tmp_path / "k.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "b.zip").write_bytes(bundle)
    folder = tmp_path / "kept"
    folder.mkdir()
    checkpoint_file(folder, key, 10, chain[9].entry_hash)
    checkpoint_file(folder, key, 40, chain[39].entry_hash)
    argv = ["audit", "verify-bundle", str(tmp_path / "b.zip"), "--public-key", str(public)]
    assert main([*argv, "--checkpoints", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.count("the chain holds its head") == 2
    assert main([*argv, "--checkpoints", str(tmp_path / "nope")]) == 1
    assert (
        capsys.readouterr().err == f"error: checkpoint folder {tmp_path / 'nope'} does not exist\n"
    )


def test_verify_bundle_with_checkpoints_loads_neither_the_database_nor_mlflow(
    bundle: bytes, chain: list[AuditRecord], key: Ed25519PrivateKey, tmp_path: Path
):
    import subprocess
    import sys

    from cryptography.hazmat.primitives import serialization

    public = tmp_path / "k.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "b.zip").write_bytes(bundle)
    kept = checkpoint_file(tmp_path, key, 10, chain[9].entry_hash)
    argv = ["audit", "verify-bundle", str(tmp_path / "b.zip"), "--public-key", str(public)]
    code = (
        "import sys; from app.cli import main;"
        f"code = main({[*argv, '--checkpoint', str(kept)]!r});"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'mlflow')];"
        "print(bad); sys.exit(code or (1 if bad else 0))"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the chain holds its head" in done.stdout
    assert done.stdout.rstrip().endswith("[]")


def test_a_member_that_inflates_beyond_its_manifest_size_is_refused_before_it_is_read(
    bundle: bytes, key: Ed25519PrivateKey
):
    # 256 MB of line breaks deflate to a quarter of a megabyte. The signed manifest says how
    # large events.jsonl is, so the verifier refuses it without inflating a byte: the deflate
    # stream's first block is made invalid here, which only a reader that inflates would meet.
    bomb = b"\n" * (256 << 20)
    data = bytearray(zipped([(n, bomb if n == "events.jsonl" else d) for n, d in members(bundle)]))
    assert len(data) < 1 << 20
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("events.jsonl")
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    data[info.header_offset + 30 + name_len + extra_len] = 0xFF  # block type 3: invalid
    assert check(bytes(data), key) == (
        "FAILED: events.jsonl: SHA-256 does not match the manifest (file altered)"
    )


def test_a_checkpoint_file_nested_too_deeply_is_refused_in_one_line(tmp_path: Path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 60_000, encoding="utf-8")
    with pytest.raises(CheckpointError, match="is not a checkpoint written by `audit checkpoint`"):
        read_checkpoint(deep)
