"""Registry moves made outside the ledger, for the demo history (`app.demo_history`).

`seed_demo` trains the demo store straight into its final state (tumor-classifier champion v2 and
challenger v3; diabetes-progression v1 Archived, v2 Production, v3 Staging). The demo history
replays how it got there through governed promotions, so before each promotion it puts the
registry back the way it was at that moment, with MLflow's own client, as a person with edit
rights on the registry would: these moves are deliberately not in the ledger.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from app.mlflow_gateway._support import apply_fast_fail_env, mlflow_errors, require_existing_sqlite
from app.settings import Settings

NO_STAGE = "None"


def set_registry_state(
    settings: Settings,
    model: str,
    *,
    aliases: Mapping[str, str | None] | None = None,
    stages: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """Make the model's aliases and stages read as given, outside the ledger; idempotent.

    Args:
        settings: Where the MLflow registry is.
        model: The registered model.
        aliases: Alias -> version, or None to remove the alias.
        stages: Version -> stage (`None`, `Staging`, `Production`, `Archived`); no other
            version is archived by the move.

    Returns:
        What changed, one line per move (empty when the registry already read so).

    Raises:
        StoreUnavailable, NotFound: The registry cannot be reached or has no such model/version.
    """
    apply_fast_fail_env()
    require_existing_sqlite(settings.registry_uri)
    changes: list[str] = []
    with mlflow_errors(settings.registry_uri, f"model {model!r}"):
        from mlflow import MlflowClient

        client = MlflowClient(
            tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri
        )
        held = {k: str(v) for k, v in (client.get_registered_model(model).aliases or {}).items()}
        for alias, version in sorted((aliases or {}).items()):
            if version is None and alias in held:
                client.delete_registered_model_alias(model, alias)
                changes.append(f"{model}@{alias} removed")
            elif version is not None and held.get(alias) != str(version):
                client.set_registered_model_alias(model, alias, str(version))
                changes.append(f"{model}@{alias} -> v{version}")
        for version, stage in sorted((stages or {}).items()):
            if client.get_model_version(model, str(version)).current_stage != stage:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated
                    client.transition_model_version_stage(
                        model, str(version), stage, archive_existing_versions=False
                    )
                changes.append(f"{model} v{version} -> {stage}")
    return tuple(changes)
