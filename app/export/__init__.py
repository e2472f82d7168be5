"""Signed, offline-verifiable audit exports (issue 7).

`build_bundle(source, scope, key) -> bytes` and `write_bundle(..., out)` build the zip (layout in
`app.export.bundle`); `verify_bundle(path, public_key, checkpoints)` checks one without database
or MLflow, also against signed checkpoints kept from earlier (`app.export.checkpoints`).
`ExportSource` is the input the pipeline reads; `app.export.store_source` adapts the governance
store to it, and `app.export.api.audit_bundle_for(settings, facade, actor, ...)` is the
authorised entry point for the audit page. Importing this package loads neither SQLAlchemy nor
MLflow.
"""

from app.export.bundle import BundleSummary, build_bundle, write_bundle
from app.export.model import ExportScope, ExportSource, GovernanceSnapshot, MemorySource
from app.export.signing import generate_keypair, load_private_key, load_public_key
from app.export.verify import BundleCheck, BundleProblem, verify_bundle

__all__ = [
    "BundleCheck",
    "BundleProblem",
    "BundleSummary",
    "ExportScope",
    "ExportSource",
    "GovernanceSnapshot",
    "MemorySource",
    "build_bundle",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
    "verify_bundle",
    "write_bundle",
]
