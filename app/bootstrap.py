"""Composition root: plain Python that turns Settings into the objects the app and CLI use.

No Streamlit here (`app/deps.py` caches what these builders return) and no heavy import at
module level: importing bootstrap must stay cheap, so each builder imports what it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.settings import Settings

if TYPE_CHECKING:
    from app.mlflow_gateway import MlflowGateway
    from app.monitoring import Monitoring


def build_gateway(settings: Settings) -> MlflowGateway:
    """The read (and registry) gateway over the configured MLflow tracking and registry stores.

    Args:
        settings: The application settings (tracking and registry URIs, data dir).

    Returns:
        A gateway that returns our entities, never MLflow objects.
    """
    from app.mlflow_gateway import MlflowGateway

    return MlflowGateway(settings)


def build_monitoring(settings: Settings, gateway: MlflowGateway) -> Monitoring:
    """Drift and feature-importance reports for model versions (also the EvidenceSource).

    Args:
        settings: The application settings (cache dir, upload limit).
        gateway: The MLflow gateway that reads artifacts and versions.
    """
    from app.monitoring import Monitoring
    from app.reports.jobs import ReportJobs

    return Monitoring(settings, gateway, ReportJobs(workers=1))
