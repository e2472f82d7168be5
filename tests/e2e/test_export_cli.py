"""`python -m app.cli audit keygen | verify-bundle | export` through the real entry point."""

from __future__ import annotations

import io
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from app.cli import main
from app.export import ExportScope, MemorySource, build_bundle, load_private_key
from tests.export_data import make_chain, rewrite, sample_snapshot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    private, public = folder / "signing.pem", folder / "signing.pub"
    assert main(["audit", "keygen", "--private", str(private), "--public", str(public)]) == 0
    return private, public


@pytest.fixture(scope="module")
def bundle(keys: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = build_bundle(
        MemorySource(make_chain(30), sample_snapshot()), ExportScope(), load_private_key(keys[0])
    )
    path = tmp_path_factory.mktemp("bundle") / "audit.zip"
    path.write_bytes(data)
    return path


def test_keygen_writes_a_private_key_only_its_owner_can_read(keys: tuple[Path, Path]):
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_refuses_to_overwrite_a_key(keys: tuple[Path, Path], capsys):
    code = main(["audit", "keygen", "--private", str(keys[0]), "--public", str(keys[1])])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1
    assert "exists already" in err


def test_verify_bundle_says_ok_in_one_line_for_a_clean_bundle(
    bundle: Path, keys: tuple[Path, Path], capsys
):
    assert main(["audit", "verify-bundle", str(bundle), "--public-key", str(keys[1])]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 30 events, seq 1-30")
    assert out.count("\n") == 1


def test_verify_bundle_names_the_first_problem_and_exits_non_zero(
    bundle: Path, keys: tuple[Path, Path], tmp_path: Path
):
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(
        rewrite(bundle.read_bytes(), "events.csv", lambda b: b.replace(b",bob,", b",eve,", 1))
    )
    # through the real entry point, as an auditor runs it
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "audit",
            "verify-bundle",
            str(tampered),
            "--public-key",
            str(keys[1]),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        "FAILED: events.csv: SHA-256 does not match the manifest (file altered)\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.zip"], "missing.zip does not exist"),
        (["BUNDLE", "--public-key", "nope.pub"], "public key nope.pub does not exist"),
    ],
)
def test_verify_bundle_input_mistakes_are_one_line(
    args: list[str],
    message: str,
    bundle: Path,
    keys: tuple[Path, Path],
    capsys,
    monkeypatch,
    tmp_path: Path,
):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("BUNDLE", str(bundle)) for a in args]
    if "--public-key" not in argv:
        argv += ["--public-key", str(keys[1])]
    assert main(["audit", "verify-bundle", *argv]) == 1
    assert capsys.readouterr().err == f"error: {message}\n"


def test_a_bundle_that_is_not_a_zip_is_refused(keys: tuple[Path, Path], tmp_path: Path, capsys):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK not really")
    assert main(["audit", "verify-bundle", str(junk), "--public-key", str(keys[1])]) == 1
    assert capsys.readouterr().err.startswith("FAILED: not a readable zip file")


def test_export_without_a_signing_key_is_one_clear_line(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv("COUNTERSIGN_SIGNING_KEY", raising=False)
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path))
    code = main(["audit", "export", "--out", str(tmp_path / "a.zip")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: no signing key configured: set COUNTERSIGN_SIGNING_KEY")
    assert err.count("\n") == 1
    assert not (tmp_path / "a.zip").exists()


def test_a_bad_date_is_one_clear_line(keys: tuple[Path, Path], tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("COUNTERSIGN_SIGNING_KEY", str(keys[0]))
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path))
    code = main(["audit", "export", "--out", str(tmp_path / "a.zip"), "--since", "yesterday"])
    assert code == 1
    assert capsys.readouterr().err.startswith("error: 'yesterday' is not a date")


def test_the_bundle_members_are_the_documented_ones(bundle: Path):
    names = zipfile.ZipFile(io.BytesIO(bundle.read_bytes())).namelist()
    assert sorted(names) == sorted(
        [
            "events.jsonl",
            "events.csv",
            "checkpoint.json",
            "checkpoint.sig",
            "report.html",
            "report.pdf",
            "manifest.json",
            "manifest.sig",
        ]
    )


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2026-11-02", False, "2026-11-02T00:00:00+00:00"),
        ("2026-11-02", True, "2026-11-03T00:00:00+00:00"),  # --until DATE includes that day
        ("2026-11-02T10:30Z", True, "2026-11-02T10:30:00+00:00"),
        ("2026-11-02T10:30:00+02:00", False, "2026-11-02T08:30:00+00:00"),
        ("2026-11-02T10:30:00", False, "2026-11-02T10:30:00+00:00"),  # naive means UTC
    ],
)
def test_period_bounds_are_utc(text: str, end: bool, expected: str):
    from app.commands.exports import parse_moment

    assert parse_moment(text, end=end).isoformat() == expected


def test_verify_bundle_loads_neither_the_database_layer_nor_mlflow(
    bundle: Path, keys: tuple[Path, Path]
):
    code = (
        "import sys; from app.cli import main;"
        f"rc = main(['audit', 'verify-bundle', {str(bundle)!r}, '--public-key', {str(keys[1])!r}]);"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'mlflow', 'alembic')];"
        "print(bad); sys.exit(rc or (3 if bad else 0))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
