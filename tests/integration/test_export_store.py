"""End to end on the real store: a governance database (SQLite, and PostgreSQL when
COUNTERSIGN_TEST_PG_URL is set) after `db upgrade`, a real flow through the facade (users, a
request, two password-re-entered approvals, execution, a reconcile finding), then the export
through the CLI and an offline verification with nothing but the zip and the public key.

The model registry is the in-memory fake of the governance tests: the export never reads MLflow.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from html import escape
from pathlib import Path

import pytest
from pypdf import PdfReader

from app.bootstrap import build_governance, upgrade_governance_db
from app.cli import main
from app.export import ExportScope, load_private_key, load_public_key, verify_bundle
from app.export.api import audit_bundle_for, export_bundle_bytes
from app.export.csv_cells import FORMULA_STARTS, restore
from app.export.events import RECORD_FIELDS
from app.settings import Settings
from governance.domain import CLI_OPERATOR
from governance.errors import AuthenticationFailed, NotAllowed
from tests.unit.fakes import FakeRegistry

PASSWORD = "correct horse battery"
# Text people type that a spreadsheet would run or a browser would execute.
JUSTIFICATION = "=cmd|' /C calc'!A0 <script>alert(1)</script> better accuracy"
COMMENTS = {"alice": "+1 evidence reviewed by alice", "bob": "@rita evidence reviewed by bob"}
# Names tried at sign-in land raw in the log (object_id): anyone at the sign-in form types them.
SIGN_IN_NAMES = {
    '=HYPERLINK("//evil.example","open")': '\'=HYPERLINK("//evil.example","open")',
    "-1 looks wrong": "'-1 looks wrong",
    "'quoted": "''quoted",
    "@SUM(1+1)": "'@SUM(1+1)",
    "\tindented": "'\tindented",
    "x\r=1+1": "x\r=1+1",
}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A fresh governance database of this module's own, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'governance.db'}"
        return
    import psycopg

    base = str(request.getfixturevalue("pg_url"))
    admin = base.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"cs_export_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def world(db_url: str, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("export-e2e")
    env = {
        "COUNTERSIGN_DATA_DIR": str(folder),
        "COUNTERSIGN_DB_URL": db_url,
        "COUNTERSIGN_SIGNING_KEY": str(folder / "signing.pem"),
    }
    assert (
        main(
            [
                "audit",
                "keygen",
                "--private",
                env["COUNTERSIGN_SIGNING_KEY"],
                "--public",
                str(folder / "signing.pub"),
            ]
        )
        == 0
    )
    settings = Settings.from_env(env)
    upgrade_governance_db(settings)
    registry = FakeRegistry()
    registry.add("iris", "1", author="dan", metrics={"accuracy": 0.90})
    registry.add("iris", "2", author="dan", metrics={"accuracy": 0.94})
    registry.aliases[("iris", "champion")] = "1"
    facade = build_governance(settings, registry=registry)
    people = {
        "rita": ("requester", "Rita Requester"),
        "alice": ("approver", "Alice Approver"),
        "bob": ("approver", "Bob Checker"),
        "frank": ("auditor", "Frank Auditor"),
    }
    for name, (role, printed) in people.items():
        facade.create_user(CLI_OPERATOR, name, [role], PASSWORD, printed)
    request = facade.request_promotion("rita", "iris", "2", "champion", JUSTIFICATION)
    for approver in ("alice", "bob"):
        facade.sign_off(
            approver,
            request.id,
            decision="approve",
            comment=COMMENTS[approver],
            content_hash=request.content_hash,
            password=PASSWORD,
        )
    for name in SIGN_IN_NAMES:
        with pytest.raises(AuthenticationFailed):
            facade.authenticate(name, PASSWORD)
    try:
        yield {
            "env": env,
            "folder": folder,
            "facade": facade,
            "request": request,
            "registry": registry,
        }
    finally:
        facade.dispose()


@pytest.fixture(scope="module")
def exported(world, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "audit.zip"
    mp = pytest.MonkeyPatch()
    for key, value in world["env"].items():
        mp.setenv(key, value)
    try:
        assert main(["audit", "export", "--out", str(out)]) == 0
    finally:
        mp.undo()
    return out


def test_the_ledger_executed_the_promotion(world):
    assert ("set_alias", "iris", "champion", "2") in world["registry"].calls


def test_the_export_of_a_real_store_verifies_offline(world, exported: Path, capsys):
    public = world["folder"] / "signing.pub"
    assert main(["audit", "verify-bundle", str(exported), "--public-key", str(public)]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    with world["facade"].store.unit_of_work(read_only=True) as uow:
        head = uow.audit.head()
    check = verify_bundle(exported, load_public_key(public))
    # The export itself is recorded right after the range it exported (issue 3: every
    # authorised action is audited), with the hashes of what it wrote.
    with world["facade"].store.unit_of_work(read_only=True) as uow:
        last_exported = next(iter(uow.audit.iterate(check.last_seq)))
    assert (check.first_seq, check.last_seq, check.head_hash) == (
        1,
        head.seq - 1,
        last_exported.entry_hash,
    )
    assert (head.action, head.actor, head.prev_hash) == (
        "audit_exported",
        "system:cli",
        check.head_hash,
    )
    recorded = json.loads(head.payload)
    bundle = zipfile.ZipFile(exported)
    assert recorded["manifest_sha256"] == hashlib.sha256(bundle.read("manifest.json")).hexdigest()
    assert (
        recorded["files"]["events.jsonl"] == hashlib.sha256(bundle.read("events.jsonl")).hexdigest()
    )
    assert (recorded["first_seq"], recorded["last_seq"]) == (1, check.last_seq)


def test_the_pdf_names_the_request_its_signers_and_their_manifestations(world, exported: Path):
    pdf = zipfile.ZipFile(exported).read("report.pdf")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert f"Request {world['request'].id}" in text
    for printed, user in (("Alice Approver", "alice"), ("Bob Checker", "bob")):
        assert printed in text
        assert user in text
    assert "password" in text  # the re-authentication method of each signature
    assert "run-iris-2" in text  # the version's source run, from the evidence snapshot
    assert "held" in text  # separation of duties: neither requester nor author approved
    # the out-of-band move found by reconcile: ledger says 2, the registry says 1
    assert "iris alias champion 2 1" in text


def test_the_jsonl_carries_the_store_s_records_exactly(world, exported: Path):
    lines = zipfile.ZipFile(exported).read("events.jsonl").decode().splitlines()
    with world["facade"].store.unit_of_work(read_only=True) as uow:
        stored = [r.as_dict() for r in uow.audit.iterate(1)]
    assert [json.loads(line) for line in lines] == stored[: len(lines)]
    assert stored[len(lines)]["action"] == "audit_exported"
    actions = {json.loads(line)["action"] for line in lines}
    assert {"request_created", "vote_recorded", "execution_succeeded"} <= actions


def _bundle_rows(bundle: zipfile.ZipFile) -> tuple[list[list[str]], list[dict]]:
    text = bundle.read("events.csv").decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    lines = [json.loads(line) for line in bundle.read("events.jsonl").decode().splitlines()]
    return rows, lines


def test_typed_text_is_escaped_in_html_spreadsheet_safe_in_csv_and_the_bundle_verifies(
    world, exported: Path, capsys
):
    public = world["folder"] / "signing.pub"
    assert main(["audit", "verify-bundle", str(exported), "--public-key", str(public)]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    bundle = zipfile.ZipFile(exported)
    html = bundle.read("report.html").decode()
    assert "<script" not in html.lower()
    assert escape(JUSTIFICATION) in html
    assert all(escape(comment) in html for comment in COMMENTS.values())
    rows, lines = _bundle_rows(bundle)
    assert len(rows) == len(lines)
    for row, line in zip(rows, lines, strict=True):
        assert not any(cell.startswith(FORMULA_STARTS) for cell in row), row
        assert row[0] == str(line["seq"])
        assert [restore(cell) for cell in row[1:-1]] == [line[f] for f in RECORD_FIELDS[1:]]
    tried = {line["object_id"]: row[5] for row, line in zip(rows, lines, strict=True)}
    assert {name: tried[name] for name in SIGN_IN_NAMES} == SIGN_IN_NAMES
    # The justification and the comments stay in the JSON payload, whose cell starts with "{".
    payloads = [
        json.loads(line["payload"])
        for line in lines
        if line["action"] in ("request_created", "vote_recorded")
    ]
    assert [p.get("justification", p.get("comment")) for p in payloads] == [
        JUSTIFICATION,
        *COMMENTS.values(),
    ]


def test_a_guard_removed_from_a_csv_cell_of_a_real_export_is_caught(
    world, exported: Path, tmp_path: Path, capsys
):
    from tests.export_data import rewrite

    key = load_private_key(Path(world["env"]["COUNTERSIGN_SIGNING_KEY"]))
    name = "-1 looks wrong"
    _, lines = _bundle_rows(zipfile.ZipFile(exported))
    seq = next(line["seq"] for line in lines if line["object_id"] == name)

    def unguard(data: bytes) -> bytes:
        return data.replace(f",'{name},".encode(), f",{name},".encode())

    forged = tmp_path / "forged.zip"
    forged.write_bytes(
        rewrite(exported.read_bytes(), "events.csv", unguard, rehash=True, resign_with=key)
    )
    public = world["folder"] / "signing.pub"
    assert main(["audit", "verify-bundle", str(forged), "--public-key", str(public)]) == 1
    assert capsys.readouterr().err.startswith(
        f"FAILED: events.csv row {seq} (seq {seq}) differs from events.jsonl in object_id"
    )


def test_an_auditor_exports_from_the_page_path_and_a_requester_is_refused(world):
    facade = world["facade"]
    key = load_private_key(Path(world["env"]["COUNTERSIGN_SIGNING_KEY"]))
    scope = ExportScope(request_id=world["request"].id)
    settings = Settings.from_env(world["env"])
    data = audit_bundle_for(settings, facade, "frank", request_id=world["request"].id)
    check = verify_bundle(io.BytesIO(data), key.public_key())
    assert check.events > 0
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))
    assert manifest["scope"]["exporter"] == "Frank Auditor (frank)"
    rows = csv.DictReader(
        io.StringIO(zipfile.ZipFile(io.BytesIO(data)).read("events.csv").decode())
    )
    marked = {r["action"] for r in rows if r["in_scope"] == "1"}
    assert {"request_created", "vote_recorded", "policy_loaded"} <= marked
    assert "user_created" not in marked
    with facade.store.unit_of_work(read_only=True) as uow:
        head = uow.audit.head()
    assert (head.action, head.actor, head.seq) == ("audit_exported", "frank", check.last_seq + 1)
    assert json.loads(head.payload)["scope"]["request_id"] == world["request"].id
    with pytest.raises(NotAllowed):
        export_bundle_bytes(facade, "rita", scope, key)
    with facade.store.unit_of_work(read_only=True) as uow:
        assert uow.audit.head().action == "action_refused"


def test_checkpoint_signs_the_current_head(world, capsys, monkeypatch):
    for key, value in world["env"].items():
        monkeypatch.setenv(key, value)
    assert main(["audit", "checkpoint"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with world["facade"].store.unit_of_work(read_only=True) as uow:
        head = uow.audit.head()
    assert printed["checkpoint"]["last_seq"] == head.seq
    assert printed["checkpoint"]["head_hash"] == head.entry_hash
    public = load_public_key(world["folder"] / "signing.pub")
    from app.export.signing import signature_valid
    from governance.audit import canonical_json

    body = canonical_json(printed["checkpoint"]).encode()
    assert signature_valid(public, body, printed["signature"])


def test_a_filtered_period_export_through_the_cli_verifies(world, tmp_path: Path, monkeypatch):
    for key, value in world["env"].items():
        monkeypatch.setenv(key, value)
    with world["facade"].store.unit_of_work(read_only=True) as uow:
        created = next(r for r in uow.audit.iterate(1) if r.action == "request_created")
    day = created.ts[:10]
    out = tmp_path / "iris.zip"
    args = [
        "audit",
        "export",
        "--out",
        str(out),
        "--model",
        "iris",
        "--since",
        created.ts,
        "--until",
        day,
    ]
    assert main(args) == 0
    check = verify_bundle(out, load_public_key(world["folder"] / "signing.pub"))
    assert check.first_seq == created.seq
    rows = list(csv.DictReader(io.StringIO(zipfile.ZipFile(out).read("events.csv").decode())))
    assert all(r["in_scope"] == "1" for r in rows if r["action"] == "vote_recorded")
    assert (
        main(
            ["audit", "export", "--out", str(out), "--since", "2001-01-01", "--until", "2001-01-02"]
        )
        == 1
    )


def test_the_report_and_the_manifest_name_the_policy_never_a_server_path(world):
    from governance.policy import load_policy_file

    settings = Settings.from_env(world["env"])
    policy = load_policy_file(settings.policy_path)
    data = audit_bundle_for(settings, world["facade"], "frank")
    bundle = zipfile.ZipFile(io.BytesIO(data))
    pdf = PdfReader(io.BytesIO(bundle.read("report.pdf")))
    texts = {
        "report.html": bundle.read("report.html").decode(),
        "report.pdf": "\n".join(page.extract_text() for page in pdf.pages),
        "manifest.json": bundle.read("manifest.json").decode(),
        "events.jsonl": bundle.read("events.jsonl").decode(),
    }
    assert settings.policy_path.is_absolute()
    server_paths = (
        str(settings.policy_path.parent),
        str(Path(__file__).resolve().parents[2]),
        str(world["folder"]),
    )
    for name, text in texts.items():
        for server_path in server_paths:
            assert server_path not in text, (name, server_path)
        assert "default_policy.yaml" in text, name
    for name in ("report.html", "report.pdf", "manifest.json"):
        assert f"default_policy.yaml {policy.hash}" in " ".join(texts[name].split()) or (
            name == "manifest.json"
            and {"name": "default_policy.yaml", "sha256": policy.hash}
            in json.loads(texts[name])["policies"]
        ), name
