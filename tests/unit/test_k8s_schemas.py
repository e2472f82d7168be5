"""Every Kubernetes manifest validates offline against the Kubernetes JSON schemas.

`kubernetes-validate` (PyPI) ships the schemas of each Kubernetes release, so nothing is
downloaded. Strict mode also refuses fields the schema does not know (a misspelt key is
silently dropped by the API server otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
VERSION = "1.33.0"  # the oldest release the manifests target (apps/v1, batch/v1 CronJob, ...)


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for k, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if doc:
                found.append((f"{path.name}#{k}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


@pytest.mark.parametrize(("where", "doc"), documents(), ids=[w for w, _ in documents()])
@pytest.mark.parametrize("version", [VERSION, kubernetes_validate.latest_version()])
def test_the_manifest_is_valid_kubernetes(where: str, doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_receiver_manifests_are_among_them() -> None:
    kinds = {where.split(":", 1)[1] for where, _ in documents()}
    assert {
        "Deployment/countersign-receiver",
        "Service/countersign-receiver",
        "Job/countersign-mlflow-webhook",
    } <= kinds


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolcy="Always"),
        lambda d: d["spec"].update(replicas="two"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"),
    ],
    ids=["misspelt field", "wrong type", "missing required field"],
)
def test_the_validation_catches_a_broken_manifest(spoil: Any) -> None:
    doc = next(d for w, d in documents() if w.endswith("Deployment/countersign-receiver"))
    spoil(doc)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSION, strict=True)
