"""The governance SQLite file holds password hashes, votes and the audit chain: it (and its
-wal and -shm files) is created readable by its owner only, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from governance.db import make_engine, upgrade


def test_a_new_governance_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "governance.db"
    previous = os.umask(0o022)  # the usual umask: files readable by every account
    try:
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        with engine.begin() as conn:  # the pool keeps it open: the -wal and -shm files stay
            conn.exec_driver_sql("SELECT count(*) FROM audit_events").all()
        modes = {
            p.name: stat.S_IMODE(p.stat().st_mode)
            for p in path.parent.iterdir()
            if p.name.startswith("governance.db")
        }
        engine.dispose()
    finally:
        os.umask(previous)
    assert set(modes) == {"governance.db", "governance.db-wal", "governance.db-shm"}
    assert modes == dict.fromkeys(modes, 0o600)


def test_an_existing_database_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "governance.db"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)  # an operator's choice (a backup group) is not overridden
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
