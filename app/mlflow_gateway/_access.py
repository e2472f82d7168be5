"""StoreAccess: the one way the gateway and the registry adapter get an MLflow client.

Before a client exists, every SQL store (tracking and registry) has its schema revision checked
read-only (`_store_check`), and every `file:` store is checked for what MLflow would add to it
(`_file_store`). Only a store at exactly the installed MLflow's revision is opened through
MLflow's client. A tracking store at another revision whose runs tables we can read is served
read-only by `ReadOnlyRunsClient`; the registry then refuses with the store's message.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from app.entities import StoreSchema
from app.errors import StoreSchemaMismatch, UserFacingError
from app.mlflow_gateway import _file_store as files
from app.mlflow_gateway._store_check import OK, StoreCheck, check_sql_store, is_sql, scheme
from app.mlflow_gateway._support import apply_fast_fail_env, redact
from app.settings import Settings


class StoreAccess:
    """Checks the configured stores and hands out the client that may read them."""

    def __init__(self, settings: Settings) -> None:
        apply_fast_fail_env()
        files.allow_file_stores(settings.tracking_uri, settings.registry_uri)
        self.tracking_uri = settings.tracking_uri
        self.registry_uri = settings.registry_uri
        self._ttl = max(1, settings.cache_ttl_s)
        self._lock = threading.Lock()
        self._checks: tuple[StoreCheck | None, StoreCheck | None] | None = None
        self._checked_at = 0.0
        self._client: Any = None
        self._readonly: Any = None

    # ---- checks ------------------------------------------------------------------------------

    def _check(self, uri: str, *, tracking: bool) -> StoreCheck | None:
        if is_sql(uri):
            variable = "MLFLOW_TRACKING_URI" if tracking else "MLFLOW_REGISTRY_URI"
            return check_sql_store(uri, redact(uri), variable)
        if files.is_file_store(uri):
            files.require_readable(uri, tracking=tracking)
        return None

    def checks(self) -> tuple[StoreCheck | None, StoreCheck | None]:
        """(tracking, registry) checks; None for stores without a schema (HTTP, file).

        A store at the expected revision is checked once per process; one at another revision
        is checked again after the cache TTL, so an upgrade is noticed without a restart.

        Raises:
            StoreUnavailable: A store is missing, unreachable or unreadable.
        """
        with self._lock:
            stale = time.monotonic() - self._checked_at > self._ttl
            if self._checks is None or (stale and any(c and c.mismatch for c in self._checks)):
                tracking = self._check(self.tracking_uri, tracking=True)
                registry = (
                    tracking
                    if self.registry_uri == self.tracking_uri
                    else self._check(self.registry_uri, tracking=False)
                )
                self._checks = (tracking, registry)
                self._checked_at = time.monotonic()
            return self._checks

    def mismatch(self) -> StoreCheck | None:
        """The first store at another schema revision, or None."""
        return next((c for c in self.checks() if c is not None and c.mismatch), None)

    def notice(self) -> str | None:
        """The page message about a store at another revision; None when there is none or the
        store cannot be checked (the page then reports the store as unreachable)."""
        try:
            found = self.mismatch()
        except UserFacingError:
            return None
        return found.message(on_page=True) if found is not None else None

    def report(self) -> tuple[StoreSchema, ...]:
        """Each store's schema state, for the CLI (URIs without password)."""
        out = []
        for role, uri, check in zip(
            ("tracking", "registry"), (self.tracking_uri, self.registry_uri), self.checks(),
            strict=True,
        ):  # fmt: skip
            if check is None:
                out.append(StoreSchema(role, redact(uri), scheme(uri), None, None, OK))
                continue
            message = check.message() if check.mismatch else ""
            out.append(
                StoreSchema(role, check.uri, scheme(uri), check.revision, check.expected,
                            check.state, message)
            )  # fmt: skip
        return tuple(out)

    # ---- clients -----------------------------------------------------------------------------

    def _mlflow_client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            # URIs on the client only: global MLflow state would leak between stores and tests.
            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
            )
        return self._client

    def tracking_client(self) -> Any:
        """The client for experiments, runs and metric histories.

        Raises:
            StoreSchemaMismatch: The tracking store is at another revision and its runs tables
                cannot be read either.
            StoreUnavailable: A store is missing or unreachable.
        """
        tracking, _ = self.checks()
        if tracking is None or not tracking.mismatch:
            return self._mlflow_client()
        if not tracking.runs_readable:
            raise StoreSchemaMismatch(tracking.message())
        if self._readonly is None:
            from app.mlflow_gateway._readonly_client import ReadOnlyRunsClient

            self._readonly = ReadOnlyRunsClient(self.tracking_uri, tracking.message())
        return self._readonly

    def registry_client(self) -> Any:
        """The client for the registry, logged models and artifacts: both stores must be at
        the installed MLflow's revision.

        Raises:
            StoreSchemaMismatch: A store is at another revision.
            StoreUnavailable: A store is missing or unreachable.
        """
        found = self.mismatch()
        if found is not None:
            raise StoreSchemaMismatch(found.message())
        return self._mlflow_client()

    @property
    def registry_absent(self) -> bool:
        """A file store without `models/`: no registered models, and nothing to open."""
        return files.registry_absent(self.registry_uri)

    def notes(self) -> list[str]:
        """Things the pages should mention about the store (folders MLflow skips)."""
        if files.is_file_store(self.tracking_uri):
            return files.skipped_experiments(self.tracking_uri)
        return []

    def missing_dataset_inputs(self, experiment_id: str, run_id: str) -> int:
        """Inputs of the run whose data set record is gone (0 when the store cannot tell)."""
        if files.is_file_store(self.tracking_uri):
            return files.missing_dataset_inputs(self.tracking_uri, experiment_id, run_id)
        if is_sql(self.tracking_uri) and self.mismatch() is None:
            from app.mlflow_gateway._sql_readonly import missing_dataset_inputs

            try:
                return missing_dataset_inputs(self.tracking_uri, run_id)
            except Exception:  # a note, not a reason to fail the page
                return 0
        return 0
