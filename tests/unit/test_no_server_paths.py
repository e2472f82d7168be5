"""Pages, reports and the audit log show no server path: a policy is named by its file name (its
hash identifies the content), a missing signing key by the setting that names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from governance import service
from governance.domain import AuditAction
from governance.errors import PolicyError
from governance.policy import load_policy_file, policy_name
from tests.unit.fakes import DEFAULT_POLICY, World, make_world


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("/srv/countersign/governance/default_policy.yaml", "default_policy.yaml"),
        ("C:\\countersign\\policies\\credit.yaml", "credit.yaml"),
        ("policy.yaml", "policy.yaml"),
        ("/etc/countersign/", "countersign"),
        ("", "policy"),
    ],
)
def test_a_policy_source_is_shown_by_its_last_component(source: str, name: str) -> None:
    assert policy_name(source) == name


def test_a_loaded_policy_knows_its_name() -> None:
    policy = load_policy_file(DEFAULT_POLICY)
    assert Path(policy.source).is_absolute()
    assert policy.name == "default_policy.yaml"


@pytest.fixture
def world() -> World:
    return make_world()


def test_the_log_records_the_policy_by_name_loaded_or_rejected(
    world: World, tmp_path: Path
) -> None:
    service.load_policy(world.uow, world.clock, DEFAULT_POLICY, "system:cli")
    (loaded,) = world.uow.events(AuditAction.POLICY_LOADED)
    assert json.loads(loaded.payload)["source"] == "default_policy.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntargets: {champion: {quorum: 0}}\n")
    with pytest.raises(PolicyError, match=str(bad)):  # the operator's message keeps the path
        service.load_policy(world.uow, world.clock, bad, "system:cli")
    rejected = world.uow.events()[-1]
    assert rejected.action == AuditAction.POLICY_REJECTED
    assert str(tmp_path) not in rejected.payload
    assert json.loads(rejected.payload)["source"] == "bad.yaml"
    assert json.loads(rejected.payload)["reason"].startswith("bad.yaml: targets.champion.quorum")


def test_the_audit_page_says_the_signing_key_is_missing_without_its_server_path(
    tmp_path: Path,
) -> None:
    from app.export.api import audit_bundle_for
    from app.export.signing import SigningKeyError
    from app.settings import Settings

    missing = tmp_path / "keys" / "audit_signing_key.pem"
    env = {"COUNTERSIGN_DATA_DIR": str(tmp_path), "COUNTERSIGN_SIGNING_KEY": str(missing)}
    settings = Settings.from_env(env, secrets_path=tmp_path / "none.toml")
    with pytest.raises(SigningKeyError) as raised:
        audit_bundle_for(settings, None, "frank")  # type: ignore[arg-type]
    assert str(tmp_path) not in str(raised.value)
    assert "COUNTERSIGN_SIGNING_KEY" in str(raised.value)


@pytest.mark.parametrize(
    ("uri", "label"),
    [
        ("sqlite:////srv/countersign/data/mlflow.db", "SQLite database mlflow.db"),
        ("file:///srv/countersign/mlruns", "file store mlruns"),
        ("/srv/countersign/mlruns", "file store mlruns"),
        ("C:\\data\\mlruns", "file store mlruns"),
        ("postgresql+psycopg://mlflow:s3cret@db:5432/mlflow", "postgresql://db:5432/mlflow"),
        ("https://user:token@mlflow.example.com/", "https://mlflow.example.com/"),
        ("http://mlflow:5000", "http://mlflow:5000"),
        ("http://mlflow:notaport", "a store whose address cannot be shown"),
    ],
)
def test_the_overview_names_the_tracking_store_without_path_or_credentials(
    uri: str, label: str
) -> None:
    from app.ui.store_label import store_label

    assert store_label(uri) == label
