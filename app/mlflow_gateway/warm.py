"""Import MLflow's client and the store modules a configured URI needs, without touching the store.

A server process warms up with this in a background thread (app.warmup), so that the first page
that reads MLflow does not pay for `import mlflow` (1-5 s here). Nothing is opened or created:
which store class gets built, and when, stays with the gateway and its checks.
"""

from __future__ import annotations


def import_client(tracking_uri: str, registry_uri: str) -> tuple[str, ...]:
    """Import MLflow's client and the tracking and registry store modules for these URIs.

    Returns:
        The names of the modules imported, for the log.
    """
    import mlflow.exceptions
    from mlflow import MlflowClient  # noqa: F401

    done = ["mlflow", "mlflow.tracking.MlflowClient"]
    schemes = {
        uri.split(":", 1)[0].split("+", 1)[0].lower() for uri in (tracking_uri, registry_uri)
    }
    if schemes & {"sqlite", "postgresql", "mysql", "mssql"}:
        import mlflow.store.model_registry.sqlalchemy_store
        import mlflow.store.model_registry.sqlalchemy_workspace_store
        import mlflow.store.tracking.sqlalchemy_store
        import mlflow.store.tracking.sqlalchemy_workspace_store

        done.append("mlflow.store.*.sqlalchemy_store")
    if schemes & {"http", "https", "databricks"}:
        import mlflow.store.model_registry.rest_store
        import mlflow.store.tracking.rest_store  # noqa: F401

        done.append("mlflow.store.*.rest_store")
    return tuple(done)
