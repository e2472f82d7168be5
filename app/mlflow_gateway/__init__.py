"""The only package that imports mlflow. It hands out our entities, never MLflow objects.

`MlflowGateway` is the read side for pages and the CLI; `MlflowModelRegistry` implements the
governance `ModelRegistry` port. mlflow itself is imported on first use, not here.
"""

from app.mlflow_gateway.gateway import MlflowGateway
from app.mlflow_gateway.registry import MlflowModelRegistry

__all__ = ["MlflowGateway", "MlflowModelRegistry"]
