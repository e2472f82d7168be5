"""The seal key file: made once for local use, never replaced, refused when unusable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.seal_keys import LOCAL_KEY_NAME, load_sealer
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
