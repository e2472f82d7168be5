"""`audit reseal` after a restore from backup, on a real SQLite governance database.

The backup is taken with SQLite's online backup API, entries are written after it and a signed
checkpoint names them; the restore rewinds the chain, and reseal records the lost range as an
audited entry after which the chain verifies again.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from app.bootstrap import build_governance
from app.cli import main as cli_main
from app.settings import Settings
from governance.db import make_engine, upgrade
from governance.domain import CLI_OPERATOR
from tests.unit.fakes import PASSWORD, FakeHasher, FakeRegistry


def backup(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def test_a_restore_is_sealed_in_the_chain_with_the_range_it_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "governance.db"
    env = {
        "COUNTERSIGN_DB_URL": f"sqlite:///{db}",
        "COUNTERSIGN_DATA_DIR": str(tmp_path),
        "COUNTERSIGN_SIGNING_KEY": str(tmp_path / "key.pem"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    engine = make_engine(env["COUNTERSIGN_DB_URL"])
    upgrade(engine)
    engine.dispose()
    settings = Settings.from_env(env, secrets_path=tmp_path / "none.toml")
    facade = build_governance(settings, registry=FakeRegistry(), hasher=FakeHasher())
    facade.create_user(CLI_OPERATOR, "ann", ["approver"], PASSWORD)
    facade.dispose()
    backup(db, tmp_path / "nightly.db")
    facade = build_governance(settings, registry=FakeRegistry(), hasher=FakeHasher())
    facade.create_user(CLI_OPERATOR, "ben", ["approver"], PASSWORD)
    facade.dispose()
    key_args = ["--private", str(tmp_path / "key.pem"), "--public", str(tmp_path / "key.pub")]
    assert cli_main(["audit", "keygen", *key_args]) == 0
    assert cli_main(["audit", "checkpoint", "--out", str(tmp_path / "cp.json")]) == 0
    signed = json.loads((tmp_path / "cp.json").read_text())["checkpoint"]
    capsys.readouterr()

    backup(tmp_path / "nightly.db", db)  # the restore; reseal before anything else writes
    argv = ["audit", "reseal", "--reason", "restored nightly.db after disk loss"]
    checkpoint = ["--checkpoint", str(tmp_path / "cp.json")]
    key = ["--public-key", str(tmp_path / "key.pub")]
    assert cli_main([*argv, *checkpoint, *key, "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["action"] == "chain_resealed"
    head = entry["payload"]["restored_head_seq"]
    assert entry["seq"] == head + 1
    assert entry["payload"]["lost_from_seq"] == head + 1
    assert entry["payload"]["lost_to_seq"] == signed["last_seq"]
    assert entry["payload"]["checkpoint"]["head_hash"] == signed["head_hash"]
    assert entry["payload"]["checkpoint_signature_verified"] is True
    assert cli_main(["audit", "verify"]) == 0
    assert "verified" in capsys.readouterr().out


def test_reseal_flags_a_checkpoint_of_another_chain_and_refuses_a_missing_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "governance.db"
    monkeypatch.setenv("COUNTERSIGN_DB_URL", f"sqlite:///{db}")
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path))
    assert cli_main(["db", "upgrade"]) == 0
    settings = Settings.from_env(secrets_path=tmp_path / "none.toml")
    facade = build_governance(settings, registry=FakeRegistry(), hasher=FakeHasher())
    facade.dispose()
    forged = {"checkpoint": {"last_seq": 1, "head_hash": "f" * 64}, "signature": "x"}
    (tmp_path / "cp.json").write_text(json.dumps(forged))
    capsys.readouterr()
    argv = ["audit", "reseal", "--reason", "restore", "--checkpoint", str(tmp_path / "cp.json")]
    assert cli_main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    assert "another hash than the restored chain" in err
    assert json.loads(out)["payload"]["checkpoint_matches"] is False
    key_args = ["--private", str(tmp_path / "k.pem"), "--public", str(tmp_path / "k.pub")]
    assert cli_main(["audit", "keygen", *key_args]) == 0
    assert cli_main([*argv, "--public-key", str(tmp_path / "k.pub")]) == 1
    assert "signature does not verify" in capsys.readouterr().err
    assert cli_main(["audit", "reseal", "--reason", "  "]) == 1
    assert "--reason" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    assert (
        cli_main(["audit", "reseal", "--reason", "r", "--checkpoint", str(tmp_path / "bad.json")])
        == 1
    )
    assert "not a checkpoint" in capsys.readouterr().err
