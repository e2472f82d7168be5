"""A governance store for the browser-side tests: a private copy of the demo MLflow store, a
governance SQLite database upgraded to head, the demo users plus a few test users, and a key
for the audit bundle. Each test opens requests on its own target, so tests never interfere.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.demo_users import DEMO_USERS

CLASSIFIER = "tumor-classifier"
PASSWORDS = {a.username: a.password for a in DEMO_USERS} | {
    "sam": "sam-pass-1234",
    "vic": "vic-pass-1234",
}
ROLES = {a.username: (a.role,) for a in DEMO_USERS} | {
    "sam": ("requester", "approver"),  # may request and sign: the self-approval case
    "vic": ("viewer",),
}


def store_env(demo_data_dir: Path, root: Path) -> dict[str, str]:
    """The environment of an app or CLI over a fresh copy of the demo store in `root`."""
    shutil.copy(demo_data_dir / "mlflow.db", root / "mlflow.db")
    return app_env(root)


def app_env(root: Path) -> dict[str, str]:
    """The environment of an app or CLI over the MLflow store `root`/mlflow.db."""
    return {
        "COUNTERSIGN_DATA_DIR": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "COUNTERSIGN_DB_URL": f"sqlite:///{root / 'governance.db'}",
        "COUNTERSIGN_AUTH": "local",
        "COUNTERSIGN_DEMO": "",
        "COUNTERSIGN_SIGNING_KEY": str(root / "signing.pem"),
    }


def prepare(env: dict[str, str], *, upgrade: bool = True) -> None:
    """Upgrade the governance schema (unless done already), create the users (those that do not
    exist yet: `seed-demo` may have made the demo users) and the signing key, in this process."""
    from app.bootstrap import build_governance, upgrade_governance_db
    from app.export import generate_keypair
    from app.settings import Settings
    from governance.domain import CLI_OPERATOR

    settings = Settings.from_env(env=env)
    if upgrade:
        upgrade_governance_db(settings)
    root = Path(env["COUNTERSIGN_DATA_DIR"])
    generate_keypair(root / "signing.pem", root / "signing.pub.pem")
    facade = build_governance(settings)
    try:
        existing = {user.name for user in facade.list_users(CLI_OPERATOR)}
        for name, roles in ROLES.items():
            if name in existing:
                continue
            display = f"{name.capitalize()} ({', '.join(roles)})"
            facade.create_user(CLI_OPERATOR, name, list(roles), PASSWORDS[name], display)
    finally:
        facade.dispose()


def workflow_policy(root: Path) -> Path:
    """The shipped policy with its champion drift gate opened (`max_drift_share: 1.0`).

    The demo's tumor-classifier batch drifts on about two thirds of its columns, so the shipped
    gate (0.5) refuses it as champion; tests about the workflow itself (votes, quorum, pages)
    use this copy, and the gate is tested on the shipped policy in test_cli_governance.py.
    """
    from app.settings import DEFAULT_POLICY

    text = Path(DEFAULT_POLICY).read_text(encoding="utf-8")
    shipped = "{max_drift_share: 0.5, if_missing: skip}"
    assert shipped in text, "the shipped champion drift gate changed; update workflow_policy"
    path = root / "workflow-policy.yaml"
    path.write_text(text.replace(shipped, "{max_drift_share: 1.0, if_missing: skip}"), "utf-8")
    return path


ROOT = Path(__file__).resolve().parents[2]
PAGE_TIMEOUT = 90  # the first page of a module imports mlflow


def using(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The body of a fixture that runs pages in this process over `env` (caches cleared)."""
    import app.deps as deps

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    deps.clear_caches()
    yield
    deps.clear_caches()


def page(name: str, user: str, state: Mapping[str, object] | None = None, **query: str) -> AppTest:
    """Run pages/`name`.py in AppTest as the signed-in `user` with `query` in the URL.

    `state` is session state left by earlier pages, set before the first run.
    """
    from app.entities import SignedInUser

    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=PAGE_TIMEOUT)
    now = datetime.now(UTC)
    at.session_state["countersign_user"] = SignedInUser(user, ROLES[user], "local", now, now, user)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.query_params.update(query)
    return at.run()
