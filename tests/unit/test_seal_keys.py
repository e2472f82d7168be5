"""The seal key file: made once for local use, never replaced, refused when unusable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.seal_keys import LOCAL_KEY_NAME, load_sealer, read_key
from app.settings import Settings, SettingsError


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(
        {"COUNTERSIGN_DATA_DIR": str(tmp_path), **env}, secrets_path=tmp_path / "none.toml"
    )


def test_local_use_makes_one_private_key_and_keeps_it(tmp_path: Path) -> None:
    first = load_sealer(settings(tmp_path))
    key_file = tmp_path / LOCAL_KEY_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_sealer(settings(tmp_path)).key_id == first.key_id


def test_a_configured_key_that_is_missing_or_garbled_is_an_error_never_replaced(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "mounted" / "audit_seal_key"
    with pytest.raises(SettingsError, match="COUNTERSIGN_AUDIT_SEAL_KEY_FILE: cannot read"):
        load_sealer(settings(tmp_path, COUNTERSIGN_AUDIT_SEAL_KEY_FILE=str(missing)))
    assert not missing.exists()
    garbled = tmp_path / "garbled"
    garbled.write_text("abc\n")
    with pytest.raises(SettingsError, match="is not a seal key file"):
        load_sealer(settings(tmp_path, COUNTERSIGN_AUDIT_SEAL_KEY_FILE=str(garbled)))


def test_old_keys_verify_seals_made_before_a_rotation(tmp_path: Path) -> None:
    old, new = tmp_path / "old.key", tmp_path / "new.key"
    old.write_text("11" * 32 + "\n")
    new.write_text("22" * 32 + "\n")
    before = load_sealer(settings(tmp_path, COUNTERSIGN_AUDIT_SEAL_KEY_FILE=str(old)))
    after = load_sealer(
        settings(
            tmp_path,
            COUNTERSIGN_AUDIT_SEAL_KEY_FILE=str(new),
            COUNTERSIGN_AUDIT_SEAL_OLD_KEY_FILES=str(old),
        )
    )
    assert after.check_entry("ab" * 32, before.entry("ab" * 32)) == ""
    assert after.entry("ab" * 32) != before.entry("ab" * 32)


def test_processes_with_their_own_data_folders_share_the_key_of_one_sqlite_database(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'ledger' / 'governance.db'}"
    one = load_sealer(settings(tmp_path / "app", COUNTERSIGN_DB_URL=database))
    other = load_sealer(settings(tmp_path / "cli", COUNTERSIGN_DB_URL=database))
    assert one.key_id == other.key_id
    assert (tmp_path / "ledger" / LOCAL_KEY_NAME).is_file()
    assert not (tmp_path / "app" / LOCAL_KEY_NAME).exists()


def test_a_shared_database_without_a_configured_key_warns_with_the_way_forward(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    postgres = "postgresql+psycopg://countersign@db.internal/countersign"
    with caplog.at_level("WARNING", logger="app.seal_keys"):
        sealer = load_sealer(settings(tmp_path, COUNTERSIGN_DB_URL=postgres))
    assert "COUNTERSIGN_AUDIT_SEAL_KEY_FILE is not set" in caplog.text
    assert "seal-keygen" in caplog.text
    assert read_key(tmp_path / LOCAL_KEY_NAME, "test").key_id == sealer.key_id
