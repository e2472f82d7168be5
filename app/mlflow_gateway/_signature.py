"""Reading a model version's signature from its MLmodel file."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from app.errors import NotFound


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

    model_id = getattr(mv, "model_id", None)
    if not model_id and (mv.source or "").startswith("models:/m-"):
        model_id = mv.source[len("models:/") :].split("/", 1)[0]
    # MLflow 3 versions point at a LoggedModel; older ones at a run artifact path.
    base = client.get_logged_model(model_id).artifact_location if model_id else mv.source
    if base.startswith(("models:/", "runs:/")):
        # Resolving these URIs would go through MLflow's *global* URIs (and could create
        # ./mlflow.db); resolve runs:/ through our client, refuse the rest.
        if not base.startswith("runs:/"):
            raise NotFound(f"the model files of {mv.name} v{mv.version} cannot be located")
        run_id, _, sub = base[len("runs:/") :].partition("/")
        base = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + sub
    with tempfile.TemporaryDirectory() as tmp:
        local = download_artifacts(
            artifact_uri=base.rstrip("/") + "/MLmodel", dst_path=tmp, tracking_uri=tracking_uri
        )
        return Path(local).read_text(encoding="utf-8")
