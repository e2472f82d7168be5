"""Reading a model version's signature from its MLmodel file."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from app.mlflow_gateway.artifacts import artifact_errors, check_size, model_files_uri

# An MLmodel file is a few kilobytes of YAML; a larger one is not parsed.
MLMODEL_MAX_MB = 5


def read_signature(client: Any, mv: Any, tracking_uri: str) -> dict[str, Any]:
    """The signature parts of the version's MLmodel file, parsed from MLflow's JSON strings."""
    import yaml

    signature = (yaml.safe_load(_read_mlmodel(client, mv, tracking_uri)) or {}).get("signature")
    out: dict[str, Any] = {}
    for part in ("inputs", "outputs", "params"):
        raw = (signature or {}).get(part)
        if raw:
            out[part] = json.loads(raw) if isinstance(raw, str) else raw
    return out


def _read_mlmodel(client: Any, mv: Any, tracking_uri: str) -> str:
    from mlflow.artifacts import download_artifacts

    base = model_files_uri(client, mv)
    with artifact_errors(base, "the MLmodel file"), tempfile.TemporaryDirectory() as tmp:
        local = Path(
            download_artifacts(
                artifact_uri=base + "/MLmodel", dst_path=tmp, tracking_uri=tracking_uri
            )
        )
        check_size("the MLmodel file", local.stat().st_size, MLMODEL_MAX_MB, "")
        return local.read_text(encoding="utf-8")
