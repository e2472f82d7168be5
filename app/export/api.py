"""Export entry points for the audit page and the CLI: authorise, then build the bundle.

The page (through `app.deps`) calls `audit_bundle_for(settings, facade, actor, ...)` and offers
the bytes as a download; nothing here touches Streamlit.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from app.export.model import ExportScope
from app.export.store_source import facade_source
from governance import domain
from governance.context import authorise

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from app.export.bundle import BundleSummary
    from app.facade import GovernanceFacade
    from app.settings import Settings


def authorise_export(facade: GovernanceFacade, actor: str) -> str:
    """Check that `actor` may export the audit log (admin, auditor, or the CLI operator).

    A refusal is recorded in the audit log by the service layer and raised.

    Returns:
        The exporter's printed name for the report's scope header.

    Raises:
        NotAllowed: The actor is unknown, disabled or lacks the export permission.
    """
    with facade.store.unit_of_work() as uow:
        principal, _ = authorise(
            uow,
            facade.context,
            actor,
            domain.Permission.EXPORT_AUDIT,
            "export the audit log",
            domain.ObjectType.AUDIT,
            "chain",
        )
    name = principal.display_name or principal.name
    return name if name == principal.name else f"{name} ({principal.name})"


def export_bundle_bytes(
    facade: GovernanceFacade, actor: str, scope: ExportScope, key: Ed25519PrivateKey
) -> bytes:
    """For the audit page: authorise the actor, then build the signed bundle in memory.

    Args:
        facade: The governance facade (from `app.bootstrap.build_governance`).
        actor: The signed-in user's name.
        scope: What to export; `exporter` is filled in from the actor.
        key: The signing key (`app.export.signing.load_private_key(settings.signing_key_path)`).
    """
    from app import __version__
    from app.export.bundle import build_bundle_with_summary

    exporter = authorise_export(facade, actor)
    scope = replace(scope, exporter=exporter, app_version=scope.app_version or __version__)
    data, summary = build_bundle_with_summary(facade_source(facade), scope, key)
    record_export(facade, actor, scope, summary)
    return data


def record_export(
    facade: GovernanceFacade, actor: str, scope: ExportScope, summary: BundleSummary
) -> None:
    """Record the written export in the audit chain, after the range it exported."""
    facade.record_export(
        actor,
        scope=scope.as_dict(),
        first_seq=summary.first_seq,
        last_seq=summary.last_seq,
        manifest_sha256=summary.manifest_sha256,
        files=summary.file_sha256,
    )


def audit_bundle_for(
    settings: Settings,
    facade: GovernanceFacade,
    actor: str,
    *,
    models: tuple[str, ...] = (),
    request_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> bytes:
    """The signed bundle for the signed-in `actor`, with the key from settings.

    Args:
        settings: Where the signing key is (COUNTERSIGN_SIGNING_KEY).
        facade: The governance facade.
        actor: The signed-in user's name (admin or auditor).
        models, request_id: What the export concerns (events are marked, not dropped).
        since, until: The period, UTC; `until` is exclusive.

    Raises:
        SigningKeyError: No usable signing key is configured (one line for st.error).
        NotAllowed: The actor may not export (the refusal is audited).
        InvalidInput, NotFound: An empty period or an unknown request.
    """
    from app.export.signing import SigningKeyError, load_private_key

    try:
        key = load_private_key(settings.signing_key_path)
    except SigningKeyError as exc:
        # The page's user is an auditor, not the server's operator: no server path for them.
        raise SigningKeyError(
            "the audit signing key is missing or unreadable on the server; an operator must set "
            "COUNTERSIGN_SIGNING_KEY (`python -m app.cli audit export` names the file)"
        ) from exc
    scope = ExportScope(models=models, request_id=request_id, since=since, until=until)
    return export_bundle_bytes(facade, actor, scope, key)
