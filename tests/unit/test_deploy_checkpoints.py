"""The shipped jobs keep signed checkpoints where the app replicas cannot write, and always check
the newest one before signing the next (compose.yaml and deploy/kubernetes/)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.unit.test_deploy_files import (
    ROOT,
    cli_argv,
    cli_lines_in_script,
    k8s_documents,
    pod_spec,
)


def checkpoint_folder(argv: list[str]) -> str:
    """The folder a checkpoint command reads its predecessor from and writes into."""
    assert argv[:2] == ["audit", "checkpoint"]
    previous = argv[argv.index("--previous-dir") + 1]
    assert argv[argv.index("--out-dir") + 1] == previous
    return previous


def mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(volume, path, read_only) of each short-syntax compose volume of a service."""
    found = []
    for item in service.get("volumes", ()):
        source, target, *mode = str(item).split(":")
        found.append((source, target, "ro" in mode))
    return found


def test_compose_checkpoints_live_on_a_volume_only_the_checkpoint_job_writes() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))["services"]
    jobs = services["jobs"]
    lines = [a for a in cli_lines_in_script(jobs["command"][2]) if a[:2] == ["audit", "checkpoint"]]
    assert len(lines) == 1
    folder = checkpoint_folder(lines[0])
    (volume,) = [v for v, path, _ in mounts(jobs) if path == folder]
    assert not volume.startswith((".", "/"))  # a named volume, not a host folder
    for name, service in services.items():
        if name != "jobs":
            assert all(v != volume or ro for v, _, ro in mounts(service)), name


@pytest.fixture(scope="module")
def pods() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (doc["kind"], doc, spec)
        for _, doc in k8s_documents()
        if (spec := pod_spec(doc)) is not None
    ]


def claim_at(spec: dict[str, Any], path: str) -> tuple[str, bool]:
    container = spec["containers"][0]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == path]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    claim = volume["persistentVolumeClaim"]
    return claim["claimName"], bool(mount.get("readOnly") or claim.get("readOnly"))


def test_kubernetes_checkpoints_live_on_a_claim_only_the_checkpoint_job_writes(
    pods: list[tuple[str, dict[str, Any], dict[str, Any]]],
) -> None:
    writers = []
    for kind, doc, spec in pods:
        argv = cli_argv(spec["containers"][0].get("command", []))
        if kind == "CronJob" and argv and argv[:2] == ["audit", "checkpoint"]:
            claim, read_only = claim_at(spec, checkpoint_folder(argv))
            assert not read_only
            writers.append((doc["metadata"]["name"], claim))
    assert [name for name, _ in writers] == ["countersign-checkpoint"]
    claim = writers[0][1]
    claims = [doc for _, doc in k8s_documents() if doc["kind"] == "PersistentVolumeClaim"]
    assert claim in [doc["metadata"]["name"] for doc in claims]
    for kind, doc, spec in pods:
        if doc["metadata"]["name"] == "countersign-checkpoint":
            continue
        for volume in spec.get("volumes", ()):
            pvc = volume.get("persistentVolumeClaim", {})
            if pvc.get("claimName") == claim:
                assert kind != "Deployment", doc["metadata"]["name"]
                assert pvc.get("readOnly") is True, doc["metadata"]["name"]
