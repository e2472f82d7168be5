"""MlflowModelRegistry (the governance ModelRegistry port) on a real MLflow store and server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.mlflow_gateway import MlflowModelRegistry
from app.settings import Settings
from governance.errors import RegistryUnavailable, UnknownModel
from governance.ports import ModelRegistry, TargetAssignment
from tests.fixtures_mlflow import free_port, settings_for

TUMOR = "tumor-classifier"
DIABETES = "diabetes-progression"


@pytest.fixture
def registry(demo_store_copy: Callable[[], Settings]) -> MlflowModelRegistry:
    return MlflowModelRegistry(demo_store_copy())


def test_it_implements_the_port(registry: MlflowModelRegistry) -> None:
    port: ModelRegistry = registry
    assert port is registry


def test_a_version_carries_its_run_metrics_params_and_author(registry: MlflowModelRegistry) -> None:
    version = registry.get_version(TUMOR, "2")
    assert (version.model, version.version, version.run_author) == (TUMOR, "2", "bob")
    assert version.aliases == ("champion",)
    assert version.stage == "None"
    assert 0.5 < version.metrics["roc_auc"] <= 1.0
    assert version.params["max_depth"] == "3"
    assert version.tags["author"] == "bob"
    assert version.run_id
    assert registry.get_version(DIABETES, "2").stage == "Production"


@pytest.mark.parametrize(
    ("model", "version"), [("no-such-model", "1"), (TUMOR, "99"), (TUMOR, "abc")]
)
def test_unknown_models_and_versions_are_refused(
    registry: MlflowModelRegistry, model: str, version: str
) -> None:
    with pytest.raises(UnknownModel):
        registry.get_version(model, version)
    with pytest.raises(UnknownModel):
        registry.set_alias(model, "champion", version)


def test_setting_an_alias_moves_it_and_is_idempotent(registry: MlflowModelRegistry) -> None:
    assert registry.alias_holder(TUMOR, "champion") == "2"
    assert registry.alias_holder(TUMOR, "nobody") is None
    registry.set_alias(TUMOR, "champion", "3")
    registry.set_alias(TUMOR, "champion", "3")
    assert registry.alias_holder(TUMOR, "champion") == "3"
    assert registry.get_version(TUMOR, "3").aliases == ("challenger", "champion")


def test_a_stage_transition_archives_the_previous_holder_when_asked(
    registry: MlflowModelRegistry,
) -> None:
    assert registry.stage_holders(DIABETES, "Production") == ("2",)
    registry.transition_stage(DIABETES, "3", "Production", archive_existing=True)
    assert registry.stage_holders(DIABETES, "Production") == ("3",)
    assert registry.get_version(DIABETES, "2").stage == "Archived"
    registry.transition_stage(DIABETES, "1", "Production", archive_existing=False)
    assert registry.stage_holders(DIABETES, "Production") == ("1", "3")
    with pytest.raises(UnknownModel):
        registry.transition_stage(DIABETES, "1", "Shipped", archive_existing=False)


def test_version_tags_are_written(registry: MlflowModelRegistry) -> None:
    registry.set_version_tags(TUMOR, "1", {"countersign.request": "42", "approved_by": "erin"})
    tags = registry.get_version(TUMOR, "1").tags
    assert tags["countersign.request"] == "42"
    assert tags["approved_by"] == "erin"


def test_assignments_list_every_alias_and_stage(registry: MlflowModelRegistry) -> None:
    every = set(registry.assignments())
    assert every == {
        TargetAssignment(TUMOR, "alias", "champion", "2"),
        TargetAssignment(TUMOR, "alias", "challenger", "3"),
        TargetAssignment(DIABETES, "stage", "Archived", "1"),
        TargetAssignment(DIABETES, "stage", "Production", "2"),
        TargetAssignment(DIABETES, "stage", "Staging", "3"),
    }
    assert {a.model for a in registry.assignments((TUMOR,))} == {TUMOR}
    with pytest.raises(UnknownModel):
        registry.assignments(("no-such-model",))


def test_an_unreachable_registry_is_reported_as_unavailable(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    registry = MlflowModelRegistry(settings_for(tmp_path, MLFLOW_TRACKING_URI=uri))
    with pytest.raises(RegistryUnavailable, match="cannot be reached"):
        registry.get_version(TUMOR, "1")
    with pytest.raises(RegistryUnavailable):
        registry.set_alias(TUMOR, "champion", "1")
    missing = MlflowModelRegistry(
        settings_for(tmp_path, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/none/mlflow.db")
    )
    with pytest.raises(RegistryUnavailable, match="does not exist"):
        missing.assignments()


def test_the_registry_works_through_an_mlflow_server(
    mlflow_server_uri: str, tmp_path: Path
) -> None:
    registry = MlflowModelRegistry(settings_for(tmp_path, MLFLOW_TRACKING_URI=mlflow_server_uri))
    assert registry.get_version(TUMOR, "3").run_author == "carol"
    # An alias and tags nobody else reads, so the shared server copy stays as seeded otherwise.
    registry.set_alias(TUMOR, "http-check", "1")
    registry.set_version_tags(TUMOR, "1", {"http-check": "yes"})
    assert registry.alias_holder(TUMOR, "http-check") == "1"
    assert registry.get_version(TUMOR, "1").tags["http-check"] == "yes"
    with pytest.raises(UnknownModel):
        registry.get_version("no-such-model", "1")
