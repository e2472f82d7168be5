"""Every page on the stores teams really have, through AppTest: SQLite, PostgreSQL, a real
`mlflow server` and a `file:` store with the shapes of tests/byo_stores.py, and stores at an
older MLflow schema revision, which must be read as they are and never changed.

One AppTest pass per store (every page, signed in with the role it needs); all problems of a
pass are reported together.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

import app.deps as deps
from app.errors import StoreSchemaMismatch
from app.mlflow_gateway.demo_seed import seed_demo
from app.settings import Settings
from tests.byo_fixtures import ByoStore, copy_store
from tests.byo_stores import LOGGED, PRODUCTION_HOLDERS, SHARED, SINGLE, SIXTY
from tests.e2e.byo_pages import Visit, browse, cli, report, run_visit
from tests.e2e.gov_env import PASSWORDS, prepare
from tests.e2e.identity_env import environment

pytestmark = pytest.mark.slow
OLD, HEAD = "bd07f7e963c5", "dc11669786a5"


@pytest.fixture(scope="module")
def governance(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A governance database with the demo users and the shipped policy."""
    root = tmp_path_factory.mktemp("byo-governance")
    env = {
        "COUNTERSIGN_DATA_DIR": str(root),
        "COUNTERSIGN_DB_URL": f"sqlite:///{root / 'governance.db'}",
        "COUNTERSIGN_AUTH": "local",
        "COUNTERSIGN_DEMO": "",
        "COUNTERSIGN_SIGNING_KEY": str(root / "signing.pem"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'unused.db'}",
    }
    prepare(env)
    return {k: v for k, v in env.items() if not k.startswith(("MLFLOW_", "COUNTERSIGN_DATA"))}


def shapes_visits(store: ByoStore) -> list[Visit]:
    shapes = store.shapes
    assert shapes is not None
    runs = shapes.runs
    compared = ",".join(runs[n] for n in ("sweep", "trial-1", "odd-params", "still-running"))
    holders = ", ".join(f"v{n}" for n in PRODUCTION_HOLDERS)
    skipped = ["Skipped 1 experiment folder(s)", "without meta.yaml"]
    lost = (
        ["point at a data set record that is no longer in the store"] if shapes.orphan_input else []
    )
    return [
        Visit("overview"),
        Visit("experiments", query={"experiment": shapes.experiment_id},
              expect=["↳ trial-1", "↳ trial-2", "FAILED", "KILLED", "RUNNING",
                      *(skipped if store.backend == "file" else [])]),
        Visit("experiments", query={"experiment": shapes.experiment_id},
              toggles={"collapse_children": True}, expect=["child runs", "sweep,"]),
        Visit("compare_runs", query={"runs": compared}, expect=["température ✓ 日本語 🚀"]),
        Visit("models", query={"model": SIXTY}, expect=["Production"]),
        Visit("models", query={"model": LOGGED, "version": "1"},
              expect=["no run (logged outside any run)",
                      "Logged model params (2) and metrics (2)"]),
        Visit("models", query={"model": LOGGED, "version": "2"}, expect=["train-set"]),
        Visit("models", query={"model": SINGLE, "version": "1"}, expect=lost),
        Visit("models", query={"model": SHARED, "version": "2"}),
        Visit("compare_versions", query={"model": SINGLE},
              expect=["v1 holds 'champion' and byo-single has no other version"]),
        Visit("compare_versions", query={"model": SIXTY, "mode": "alias", "alias": "Production"},
              expect=[f"3 versions hold Production at once: {holders}"]),
        Visit("compare_versions", query={"model": SIXTY, "mode": "alias", "alias": "challenger"},
              expect=["No version of byo-sixty holds 'challenger' now. Held now: Production"]),
        Visit("compare_versions", query={"model": LOGGED, "versions": "1,2"},
              expect=["0.91", "0.87"]),
        Visit("compare_versions", query={"model": LOGGED, "versions": "1,2"},
              state={"version_tab": "Data sets"}, expect=["eval-set"]),
        Visit("compare_versions", query={"model": SHARED, "versions": "1,2"},
              expect=["0.8", "0.83"]),
        Visit("drift", query={"model": LOGGED, "version": "2"}),
        # A pyfunc model without an importance artifact: the page says so (its own error line).
        Visit("feature_importance", query={"model": LOGGED, "versions": "2"},
              allowed_errors=["byo-logged v2: no importance artifact and no sklearn model"]),
        Visit("promotions", "alice", {"model": SIXTY, "version": "60", "target": "Production"},
              expect=[f"Production is held now by {holders}", "moves them to Archived"]),
        # The shipped policy asks for a source run: a model logged outside any run fails it.
        Visit("promotions", "alice", {"model": LOGGED, "version": "1", "target": "champion"},
              expect=["Candidate v1 lineage: logged model", "no run",
                      "missing evidence: candidate.run_id"],
              allowed_errors=["1 gate(s) fail: evidence present: candidate.run_id"]),
        Visit("approvals", "erin"),
        Visit("audit", "audrey"),
        Visit("admin", "admin"),
    ]  # fmt: skip


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_page_opens_on_each_store(
    byo_store: ByoStore,
    governance: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = byo_store
    if store.backend == "sqlite":  # a private copy: its bytes are checked below
        store = copy_store(store, tmp_path / "copy")
    for key, value in (governance | store.env()).items():
        monkeypatch.setenv(key, value)
    before = digest(Path(store.uri[len("sqlite:///") :])) if store.backend == "sqlite" else ""
    deps.clear_caches()
    try:
        seen = browse(shapes_visits(store))
    finally:
        deps.clear_caches()
    problems = report(seen)
    assert not problems, "\n".join(problems)
    if before:  # browsing every page wrote nothing to the store
        assert digest(Path(store.uri[len("sqlite:///") :])) == before


def old_visits(store: ByoStore) -> list[Visit]:
    runs = store.old_runs
    pages = ["overview", "models", "compare_versions", "drift", "feature_importance"]
    return [
        *(Visit(p) for p in pages),
        Visit("experiments", query={"experiment": "1"},
              expect=["↳ legacy-child", "legacy-failed", "KILLED", "RUNNING"]),
        Visit("experiments", query={"experiment": "1", "filter": "metrics.rmse < 0.2"},
              expect=["legacy-killed"]),
        Visit("compare_runs", query={"runs": f"{runs['legacy-parent']},{runs['legacy-child']}"},
              expect=["température ✓"]),
        Visit("promotions", "alice"),
        Visit("approvals", "erin"),
        Visit("audit", "audrey"),
        Visit("admin", "admin"),
    ]  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_store_at_an_older_schema_is_read_as_it_is_and_never_changed(
    backend: str,
    governance: dict[str, str],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store: ByoStore = request.getfixturevalue(f"byo_old_{backend}")
    env = governance | store.env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    fingerprint = _fingerprint(store)
    deps.clear_caches()
    try:
        seen = browse(old_visits(store))
    finally:
        deps.clear_caches()
    problems = report(seen)
    assert not problems, "\n".join(problems)
    for name, page in seen.items():
        # one message, on every page, with both revisions and both ways forward
        assert page.texts.count(f"has schema revision {OLD}") == 1, name
        assert f"expects {HEAD}" in page.texts, name
        assert "mlflow db upgrade $MLFLOW_TRACKING_URI" in page.texts, name
        assert str(store.data_dir.parent) not in page.texts, name  # no server path on a page
        assert "mlflow server" in page.texts, name
    assert seen["models?"].texts.count("reads through MLflow's own client") == 1

    code, out, err = cli(env, "store", "check")
    assert code == 1
    assert f"at schema revision {OLD} (expected {HEAD}): older" in out
    assert "mlflow db upgrade" in err
    code, _, err = cli(env, "reconcile")
    assert code != 0
    assert f"has schema revision {OLD}" in err
    code, _, err = cli(env, "request", "create", "--model", "legacy-model", "--version", "2",
                       "--target", "champion", "--justification", "x", "--as", "alice",
                       "--password-stdin", stdin=PASSWORDS["alice"] + "\n")  # fmt: skip
    assert code != 0
    assert f"has schema revision {OLD}" in err
    with pytest.raises(StoreSchemaMismatch, match=OLD):  # seeding writes through MLflow: refused
        seed_demo(Settings.from_env(env=env), echo=lambda _line: None)
    assert _fingerprint(store) == fingerprint


def _fingerprint(store: ByoStore) -> str:
    """SQLite: the file's bytes. PostgreSQL: the revision and every row of every table."""
    if store.backend == "sqlite":
        return digest(Path(store.uri[len("sqlite:///") :]))
    import sqlalchemy

    engine = sqlalchemy.create_engine(store.uri)
    try:
        with engine.connect() as conn:
            tables = sorted(sqlalchemy.inspect(conn).get_table_names())
            rows = [
                (t, sorted(map(repr, conn.execute(sqlalchemy.text(f'SELECT * FROM "{t}"')))))
                for t in tables
            ]
    finally:
        engine.dispose()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_only_an_executed_promotion_changes_a_store(
    byo_sqlite: ByoStore, governance: dict[str, str], tmp_path: Path
) -> None:
    store = copy_store(byo_sqlite, tmp_path / "copy")
    path = Path(store.uri[len("sqlite:///") :])
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\ndefaults: {quorum: 1}\n", encoding="utf-8")
    env = governance | store.env(COUNTERSIGN_POLICY=str(policy))
    before = digest(path)
    assert cli(env, "store", "check")[0] == 0
    assert cli(env, "reconcile", "--json")[0] == 0
    code, out, err = cli(env, "request", "create", "--model", SIXTY, "--version", "60",
                         "--target", "Production", "--justification", "ship it", "--as",
                         "alice", "--password-stdin", "--json",
                         stdin=PASSWORDS["alice"] + "\n")  # fmt: skip
    assert code == 0, err
    assert digest(path) == before  # reading, capturing evidence, recording a request: no write
    request_id = json.loads(out)["id"]
    code, _, err = cli(env, "request", "approve", request_id, "--comment", "ok", "--as", "erin",
                       "--password-stdin", stdin=PASSWORDS["erin"] + "\n")  # fmt: skip
    assert code == 0, err
    assert digest(path) != before
    with environment(env):
        from mlflow import MlflowClient

        versions = MlflowClient(store.uri, store.uri).search_model_versions(f"name = '{SIXTY}'")
    stages = {v.version: v.current_stage for v in versions}
    assert stages[60] == "Production"
    assert {stages[int(n)] for n in PRODUCTION_HOLDERS} == {"Archived"}


def test_the_app_and_the_cli_capture_the_same_evidence_for_a_logged_model(
    byo_sqlite: ByoStore,
    governance: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = copy_store(byo_sqlite, tmp_path / "copy")
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\ndefaults: {quorum: 1, gates: []}\n", encoding="utf-8")
    env = governance | store.env(COUNTERSIGN_POLICY=str(policy))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    deps.clear_caches()
    try:
        _, seen = run_visit(
            Visit("promotions", "alice", {"model": LOGGED, "version": "1", "target": "challenger"})
        )
        shown = re.search(r"Evidence SHA-256: `([0-9a-f]{64})`", seen.texts)
        assert shown, seen.texts
        code, out, err = cli(env, "request", "create", "--model", LOGGED, "--version", "1",
                             "--target", "challenger", "--justification", "model-only", "--as",
                             "alice", "--password-stdin", "--json",
                             stdin=PASSWORDS["alice"] + "\n")  # fmt: skip
        assert code == 0, err
        created = json.loads(out)
        assert created["evidence_hash"] == shown.group(1)
        evidence = deps.get_governance().get_request("alice", created["id"]).request
        candidate = evidence.evidence_dict()["candidate"]
    finally:
        deps.clear_caches()
    assert candidate["run_id"] == ""
    assert candidate["metrics"] == {"accuracy": 0.91, "f1": 0.88}
    logged = candidate["lineage"]["logged_model"]
    assert logged["model_id"] == candidate["model_id"]
    assert logged["source_run_id"] == ""
    assert {(m["key"], m["dataset_name"]) for m in logged["metrics"]} == {
        ("accuracy", "eval-set"),
        ("f1", "eval-set"),
    }


def test_a_target_named_in_the_url_is_shown_as_text(
    byo_sqlite: ByoStore, governance: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in (governance | byo_sqlite.env()).items():
        monkeypatch.setenv(key, value)
    hostile = "**x** [click](https://evil.example/) ![i](https://evil.example/i.png)"
    deps.clear_caches()
    try:
        at, seen = run_visit(
            Visit("compare_versions", query={"model": SIXTY, "mode": "alias", "alias": hostile})
        )
    finally:
        deps.clear_caches()
    raw = "\n".join(str(i.value) for i in at.info)
    assert "No version of byo\\-sixty holds" in raw
    assert "](https://evil" not in raw  # the link and image syntax arrive escaped
    assert "\\*\\*x\\*\\*" in raw
    assert hostile in seen.texts  # and read as the text it is
