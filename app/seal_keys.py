"""The seal key files: reading them, and making one for local use (see governance.seals).

The key seals every audit entry and every row that decides an outcome. It lives outside the
governance database: in production a Secret mounted into the app replicas and the jobs only
(COUNTERSIGN_AUDIT_SEAL_KEY_FILE), never on the database host. For `make run` and local use
on a SQLite governance database, with the setting empty, a key is generated once beside the
database file (mode 0600), so every process that opens that database uses the same key. Any
other database is shared by replicas and jobs, which must all hold one key: there an unset
setting falls back to the data folder with a warning.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from app.settings import Settings, SettingsError
from governance.db import sqlite_file
from governance.seals import MIN_KEY_BYTES, Sealer, SealKey, parse_key_text

log = logging.getLogger(__name__)
KEY_SETTING = "COUNTERSIGN_AUDIT_SEAL_KEY_FILE"
OLD_KEYS_SETTING = "COUNTERSIGN_AUDIT_SEAL_OLD_KEY_FILES"
LOCAL_KEY_NAME = "audit-seal.key"
MAX_KEY_FILE_BYTES = 4096


def seal_key_path(settings: Settings) -> Path:
    """The configured key file, or the local one beside a SQLite governance database.

    Any other database with no key file configured falls back to a key under the data folder,
    with a warning: a single process works, but replicas and jobs that each made their own key
    would refuse each other's seals, so production sets the file on every one of them.
    """
    if settings.audit_seal_key_file is not None:
        return settings.audit_seal_key_file
    database = sqlite_file(settings.db_url)
    if database is not None:
        return database.parent / LOCAL_KEY_NAME
    log.warning(
        "%s is not set: sealing with the key under the data folder. Every replica and job on "
        "this database must hold the same key: make one with `python -m app.cli audit "
        "seal-keygen --out FILE`, keep it off the database host, and set %s on each of them",
        KEY_SETTING,
        KEY_SETTING,
    )
    return settings.data_dir / LOCAL_KEY_NAME


def load_sealer(settings: Settings) -> Sealer:
    """The sealer of this deployment: the current key and any earlier keys (verify only).

    With COUNTERSIGN_AUDIT_SEAL_KEY_FILE empty, the local key beside a SQLite governance
    database is used and made at first start; a configured file that is missing is an error,
    never replaced (a new key would make every earlier seal fail).

    Raises:
        SettingsError: A key file cannot be read or holds no valid key; the message names the
            setting.
    """
    path = seal_key_path(settings)
    if settings.audit_seal_key_file is None and not path.exists():
        write_new_key(path, announce=True)
    current = read_key(path, KEY_SETTING)
    old = [read_key(p, OLD_KEYS_SETTING) for p in settings.audit_seal_old_key_files]
    return Sealer(current, old)


def read_key(path: Path, setting: str) -> SealKey:
    """One key file: hexadecimal text of at least 32 random bytes."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"{setting}: cannot read {path} ({exc.strerror or exc})") from exc
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise SettingsError(f"{setting}: {path} is not a seal key file (too large)")
    try:
        return parse_key_text(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SettingsError(
            f"{setting}: {path} is not a seal key file ({MIN_KEY_BYTES * 2} or more hexadecimal "
            "digits; make one with `python -m app.cli audit seal-keygen --out FILE`)"
        ) from exc


def write_new_key(path: Path, *, announce: bool = False) -> SealKey:
    """Write a new random key to `path` (mode 0600); refuses to replace an existing file.

    Two processes starting at once both end up with the one key that was written first: the
    key is written to a private temporary file and linked into place, which fails if the name
    exists.
    """
    key = SealKey(secrets.token_bytes(MIN_KEY_BYTES))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.secret.hex() + "\n")
        try:
            os.link(partial, path)
        except FileExistsError:
            return read_key(path, KEY_SETTING)
    finally:
        partial.unlink(missing_ok=True)
    if announce:  # logged, not printed: a command's output stays one clear message
        log.info(
            "made a new audit seal key at %s (key id %s); back it up apart from the governance "
            "database: without it no seal can be checked",
            path,
            key.key_id,
        )
    return key
