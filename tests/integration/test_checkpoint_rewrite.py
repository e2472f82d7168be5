"""A database insider rewrites the chain consistently; the seals and the checkpoints tell.

On a real SQLite file and a real PostgreSQL database: a promotion is approved by ann, the
hourly job signs checkpoints (each checked against the one before), then somebody with SQL
access makes it look as if "mallory" had signed instead: a user row, the vote, the decision,
the execution and the audit entries, with a forged `user_created` entry inserted into the
chain, every hash recomputed and the head moved. The hash chain verifies on its own; the
insider has no seal key, so `audit verify` names the first rewritten entry, the rows fail
their seals, and the checkpoints (and a bundle exported after the rewrite, checked against
them) do not match.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from app.bootstrap import build_governance
from app.cli import main as cli_main
from app.settings import Settings
from governance.audit import AuditRecord, canonical_json
from governance.audit_store import verify_audit_log
from governance.db import make_engine, upgrade
from governance.domain import CLI_OPERATOR
from tests.integration.insider import read_chain, rewrite_chain, triggers_off
from tests.unit.fakes import PASSWORD, FakeHasher, FakeRegistry

POLICY = "version: 1\ndefaults: {approver_roles: [approver], quorum: 1, expires_after: 7d}\n"


@dataclass
class World:
    url: str
    tmp: Path
    settings: Settings
    public: Path
    folder: Path  # the checkpoint job's folder
    request_id: str = ""

    def cli(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli_main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    def checkpoint_job(self) -> tuple[str, ...]:
        """The hourly job: sign the head, checked against the previous checkpoint in the folder."""
        folder = str(self.folder)
        return ("audit", "checkpoint", "--previous-dir", folder, "--out-dir", folder)

    def checkpoints(self) -> list[dict[str, object]]:
        return [json.loads(p.read_text())["checkpoint"] for p in sorted(self.folder.glob("*.json"))]


@pytest.fixture
def world(empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return make_world(empty_db_url, tmp_path, monkeypatch)


def make_world(empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """A migrated database, a signing key pair and an empty checkpoint folder."""
    engine = make_engine(empty_db_url)
    upgrade(engine)
    engine.dispose()
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    env = {
        "COUNTERSIGN_DB_URL": empty_db_url,
        "COUNTERSIGN_DATA_DIR": str(tmp_path),
        "COUNTERSIGN_POLICY": str(tmp_path / "policy.yaml"),
        "COUNTERSIGN_SIGNING_KEY": str(tmp_path / "signing.pem"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    public = tmp_path / "signing.pub"
    assert (
        cli_main(
            [
                "audit",
                "keygen",
                "--private",
                env["COUNTERSIGN_SIGNING_KEY"],
                "--public",
                str(public),
            ]
        )
        == 0
    )
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    settings = Settings.from_env(env, secrets_path=tmp_path / "none.toml")
    return World(empty_db_url, tmp_path, settings, public, folder)


def workflow(world: World, step: Callable[..., object]) -> None:
    """Users, a checkpoint, ann's approval, a checkpoint, a pending request, a checkpoint."""
    registry = FakeRegistry()
    registry.add("iris", "1", author="carl", metrics={"accuracy": 0.9})
    registry.add("iris", "2", author="carl", metrics={"accuracy": 0.93})
    facade = build_governance(world.settings, registry=registry, hasher=FakeHasher())
    try:
        facade.create_user(CLI_OPERATOR, "rita", ["requester"], PASSWORD)
        facade.create_user(CLI_OPERATOR, "ann", ["approver"], PASSWORD)
        step()
        request = facade.request_promotion("rita", "iris", "2", "champion", "more accurate")
        facade.sign_off(
            "ann",
            request.id,
            decision="approve",
            comment="checked",
            content_hash=request.content_hash,
            password=PASSWORD,
        )
        world.request_id = request.id
        step()
        facade.request_promotion("rita", "iris", "1", "challenger", "keep as fallback")
        step()
    finally:
        facade.dispose()


def as_mallory(request_id: str) -> Callable[[list[AuditRecord]], list[AuditRecord]]:
    """The insider's edit: mallory, created just before the request, signed instead of ann."""

    def edit(records: list[AuditRecord]) -> list[AuditRecord]:
        out: list[AuditRecord] = []
        for rec in records:
            if rec.action == "request_created" and rec.object_id == request_id:
                template = next(r for r in records if r.object_id == "ann")
                payload = canonical_json({"display_name": "mallory", "roles": ["approver"]})
                out.append(replace(template, ts=rec.ts, object_id="mallory", payload=payload))
            if rec.object_id == request_id:
                rec = replace(
                    rec,
                    actor="mallory" if rec.actor == "ann" else rec.actor,
                    payload=rec.payload.replace('"ann"', '"mallory"'),
                )
            out.append(rec)
        return out

    return edit


def mallory_rows(request_id: str) -> Callable[[Connection], None]:
    def also(conn: Connection) -> None:
        conn.execute(
            text(
                "INSERT INTO users (name, display_name, roles, password_hash, disabled, "
                "failed_logins, created_at) SELECT 'mallory', 'mallory', roles, password_hash, "
                "disabled, 0, created_at FROM users WHERE name = 'ann'"
            )
        )
        rid = {"rid": request_id}
        conn.execute(
            text(
                "UPDATE votes SET approver = 'mallory', signer_name = 'mallory' "
                "WHERE request_id = :rid AND approver = 'ann'"
            ),
            rid,
        )
        conn.execute(
            text(
                "UPDATE decisions SET decided_by = 'mallory', approvers = '[\"mallory\"]' "
                "WHERE request_id = :rid"
            ),
            rid,
        )
        conn.execute(text("UPDATE executions SET actor = 'mallory' WHERE request_id = :rid"), rid)

    return also


def test_a_consistent_rewrite_passes_verify_but_not_the_signed_checkpoints(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    job = world.checkpoint_job()

    def hourly() -> None:
        code, _, err = world.cli(capsys, *job)
        assert code == 0, err

    workflow(world, hourly)
    first, second, third = world.checkpoints()
    assert "previous" not in first
    assert second["previous"] == {"last_seq": first["last_seq"], "head_hash": first["head_hash"]}
    assert third["previous"] == {"last_seq": second["last_seq"], "head_hash": second["head_hash"]}
    files = sorted(world.folder.glob("*.json"))
    key = ("--public-key", str(world.public))
    export_before = world.tmp / "before.zip"
    assert world.cli(capsys, "audit", "export", "--out", str(export_before))[0] == 0

    engine = make_engine(world.url)
    try:
        changed = rewrite_chain(
            engine, as_mallory(world.request_id), also=mallory_rows(world.request_id)
        )
        with engine.connect() as conn:
            forged = read_chain(conn)
    finally:
        engine.dispose()
    assert first["last_seq"] < changed <= second["last_seq"]
    assert forged[changed - 1].object_id == "mallory"

    # The hash chain is consistent, but the rewritten entries and rows fail their seals.
    engine = make_engine(world.url)
    try:
        assert verify_audit_log(engine).ok  # hashes only: the rewrite is consistent
    finally:
        engine.dispose()
    facade = build_governance(world.settings, registry=FakeRegistry(), hasher=FakeHasher())
    try:
        votes = facade.get_request(CLI_OPERATOR, world.request_id).votes
    finally:
        facade.dispose()
    assert [v.approver for v in votes] == ["mallory"]
    assert votes[0].seal_problem == "the seal does not match"
    code, out, err = world.cli(capsys, "audit", "verify")
    assert code == 1
    assert err.startswith(f"audit chain broken at seq {changed}: the entry's seal fails")

    # The checkpoint before the rewrite still holds (the seals fail after it); the ones after
    # the rewrite do not.
    code, out, _ = world.cli(capsys, "audit", "verify", "--checkpoint", str(files[0]), *key)
    assert code == 1
    assert f"checkpoint seq {first['last_seq']} ({files[0].name}" in out
    assert "the chain holds its head" in out
    code, out, err = world.cli(capsys, "audit", "verify", "--checkpoint", str(files[1]), *key)
    assert code == 1
    seq = second["last_seq"]
    held = forged[int(seq) - 1].entry_hash  # type: ignore[call-overload]
    assert f"checkpoint seq {seq} ({files[1].name}" in err
    signed, holds = second["head_hash"], held
    assert f"MISMATCH at seq {seq}: the checkpoint signed {signed}, the chain holds {holds}" in err
    code, out, err = world.cli(
        capsys, "audit", "verify", "--checkpoints", str(world.folder), *key, "--json"
    )
    assert code == 1
    report = json.loads(out)
    assert report["chain"]["ok"] is False
    assert report["chain"]["first_broken_seq"] == changed
    assert [c["status"] for c in report["checkpoints"]] == ["match", "mismatch", "mismatch"]
    assert report["checkpoints"][1]["held_head_hash"] == held
    code, _, err = world.cli(capsys, "audit", "verify", "--checkpoints", str(world.folder), *key)
    assert code == 1
    assert f"the first rewritten entry lies in seq {first['last_seq'] + 1}-{seq}" in err

    # The hourly job stops signing: nothing signed, nothing written.
    code, out, err = world.cli(capsys, *job)
    assert code == 1
    assert out == ""
    assert f"first broken seq {changed}: the entry's seal fails" in err
    assert "nothing signed" in err
    assert sorted(world.folder.glob("*")) == files

    # A bundle exported after the rewrite verifies alone, but not against the kept checkpoints.
    after = world.tmp / "after.zip"
    assert world.cli(capsys, "audit", "export", "--out", str(after))[0] == 0
    bundle = ("audit", "verify-bundle", str(after), *key)
    code, out, _ = world.cli(capsys, *bundle)
    assert code == 0
    assert out.startswith("OK: ")
    code, out, err = world.cli(capsys, *bundle, "--checkpoint", str(files[1]))
    assert code == 1
    assert err.startswith(f"FAILED: checkpoint seq {seq} ")
    assert f"the checkpoint signed {second['head_hash']}, the chain holds {held}" in err
    code, out, _ = world.cli(capsys, *bundle, "--checkpoint", str(files[0]))
    assert code == 0
    assert f"checkpoint seq {first['last_seq']} ({files[0].name}" in out
    # The bundle exported before the rewrite agrees with every checkpoint signed until then.
    code, out, err = world.cli(
        capsys,
        "audit",
        "verify-bundle",
        str(export_before),
        *key,
        "--checkpoints",
        str(world.folder),
    )
    assert code == 0, err


def test_checkpoint_refuses_a_broken_chain_and_a_previous_the_chain_does_not_hold(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow(world, lambda: None)
    out_dir = ("--out-dir", str(world.folder))
    code, _, err = world.cli(capsys, "audit", "checkpoint", *out_dir)
    assert code == 0, err
    (signed,) = sorted(world.folder.glob("*.json"))
    body = json.loads(signed.read_text())

    # A checkpoint file altered after signing (its seq changed) is refused as --previous.
    altered = world.tmp / "altered.json"
    altered.write_text(json.dumps({**body, "checkpoint": {**body["checkpoint"], "last_seq": 1}}))
    code, out, err = world.cli(capsys, "audit", "checkpoint", "--previous", str(altered), *out_dir)
    assert (code, out) == (1, "")
    assert "signature does not verify" in err
    assert "nothing signed" in err

    # A previous checkpoint naming entries the chain no longer has (a restore, not resealed).
    engine = make_engine(world.url)
    try:
        with engine.begin() as conn, triggers_off(conn):
            last = body["checkpoint"]["last_seq"]
            conn.execute(text("DELETE FROM audit_events WHERE seq >= :s"), {"s": last - 1})
            conn.execute(
                text("UPDATE audit_chain_head SET seq = :s, head_hash = :h WHERE id = 1"),
                {"s": last - 2, "h": read_chain(conn)[-1].entry_hash},
            )
    finally:
        engine.dispose()
    code, out, err = world.cli(capsys, "audit", "checkpoint", "--previous", str(signed), *out_dir)
    assert (code, out) == (1, "")
    assert f"MISSING: the chain ends at seq {last - 2}, before the checkpoint's seq {last}" in err

    # One entry altered in place without recomputing its hash: the chain is broken.
    engine = make_engine(world.url)
    try:
        with engine.begin() as conn, triggers_off(conn):
            conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    finally:
        engine.dispose()
    code, out, err = world.cli(capsys, "audit", "checkpoint", *out_dir)
    assert (code, out) == (1, "")
    assert err == (
        "error: the audit chain does not verify (first broken seq 3: entry_hash does not match "
        "the entry's content); nothing signed\n"
    )
    assert sorted(world.folder.glob("*")) == [signed]


def test_after_a_recorded_restore_the_lost_checkpoints_are_named_and_the_series_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's restore steps on SQLite: reseal, set aside what the restore lost, go on."""
    import shutil
    import sqlite3

    db = tmp_path / "db" / "governance.db"
    db.parent.mkdir()
    w = make_world(f"sqlite:///{db}", tmp_path, monkeypatch)
    job = ("audit", "checkpoint", "--previous-dir", str(w.folder), "--out-dir", str(w.folder))
    backups: list[Path] = []

    def hourly() -> None:
        assert w.cli(capsys, *job)[0] == 0
        if not backups:  # the nightly backup, right after the first checkpoint
            backups.append(tmp_path / "nightly.db")
            with sqlite3.connect(db) as src, sqlite3.connect(backups[0]) as dst:
                src.backup(dst)

    workflow(w, hourly)
    files = sorted(w.folder.glob("*.json"))
    newest = json.loads(files[-1].read_text())["checkpoint"]
    key = ("--public-key", str(w.public))
    with sqlite3.connect(backups[0]) as src, sqlite3.connect(db) as dst:
        src.backup(dst)  # the restore
    reseal = ("audit", "reseal", "--reason", "restored nightly.db", "--checkpoint", str(files[-1]))
    assert w.cli(capsys, *reseal, *key)[0] == 0
    assert w.cli(capsys, *job)[0] == 1  # the job will not sign over lost entries

    code, out, err = w.cli(
        capsys, "audit", "verify", "--checkpoints", str(w.folder), *key, "--json"
    )
    assert code == 1
    checks = json.loads(out)["checkpoints"]
    assert [c["status"] for c in checks] == ["match", "missing", "missing"]
    assert "records seq 4-" in checks[2]["detail"]
    assert "in a restore: restored nightly.db" in checks[2]["detail"]
    aside = w.folder / "lost-in-restore"
    aside.mkdir()
    for check, path in zip(checks, files, strict=True):
        if check["status"] != "match":
            shutil.move(path, aside / path.name)
    code, out, err = w.cli(capsys, *job)
    assert code == 0, err
    assert json.loads(out)["checkpoint"]["previous"]["last_seq"] == checks[0]["last_seq"]
    assert newest["last_seq"] > checks[0]["last_seq"]
    assert w.cli(capsys, "audit", "verify", "--checkpoints", str(w.folder), *key)[0] == 0
