"""Loading a registered model version's Python object (for model-native feature importance).

Only scikit-learn flavoured models are loaded; anything else returns None so the caller can fall
back to another importance source. URIs are passed explicitly: no global MLflow state.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from app.mlflow_gateway._support import apply_fast_fail_env, mlflow_errors
from app.settings import Settings


def load_sklearn_model(settings: Settings, name: str, version: str) -> Any | None:
    """The version's scikit-learn estimator, or None when the model has no sklearn flavour.

    Args:
        settings: Tracking and registry URIs.
        name: Registered model name.
        version: Version number as text.

    Raises:
        StoreUnavailable: The store cannot be read.
        NotFound: The model or version does not exist.
    """
    apply_fast_fail_env()
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    with mlflow_errors(settings.registry_uri, f"model {name!r} version {version}"):
        mv = client.get_model_version(name, str(version))
        model_id = getattr(mv, "model_id", None)
        if not model_id and (mv.source or "").startswith("models:/m-"):
            model_id = mv.source[len("models:/") :].split("/", 1)[0]
        base = client.get_logged_model(model_id).artifact_location if model_id else mv.source
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(
                download_artifacts(
                    artifact_uri=base, dst_path=tmp, tracking_uri=settings.tracking_uri
                )
            )
            flavors = (yaml.safe_load((local / "MLmodel").read_text()) or {}).get("flavors", {})
            if "sklearn" not in flavors:
                return None
            import mlflow.sklearn

            # Demo and most team models use cloudpickle; skops models need trusted tree types.
            try:
                return mlflow.sklearn.load_model(str(local))
            except TypeError:
                return mlflow.sklearn.load_model(
                    str(local), skops_trusted_types=["sklearn.tree._tree.Tree"]
                )
