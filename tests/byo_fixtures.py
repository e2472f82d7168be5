"""Session fixtures: the store shapes of `tests/byo_stores.py` on every backend, built once.

- `byo_sqlite`, `byo_postgresql`, `byo_server`, `byo_file`: the shapes in a SQLite file, a
  PostgreSQL database of this session, the session's real `mlflow server` and a `file:` store.
- `byo_old_sqlite`, `byo_old_postgresql`: a store at MLflow schema revision bd07f7e963c5.
- `byo_store`: parametrized over the four current-schema backends.

Shared stores are read-only for tests: a test that writes (a promotion) copies the SQLite file
or the file store first (`copy_store`).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.byo_stores import Shapes, build_file_store, build_old_schema_store, build_shapes


@dataclass(frozen=True)
class ByoStore:
    """A built store: its backend, URI, a data dir for the app, and what it holds."""

    backend: str
    uri: str
    data_dir: Path
    shapes: Shapes | None = None
    old_runs: dict[str, str] = field(default_factory=dict)  # old-schema stores: name -> run id

    def env(self, **extra: str) -> dict[str, str]:
        """The app's environment over this store (tracking and registry alike)."""
        return {
            "COUNTERSIGN_DATA_DIR": str(self.data_dir),
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_REGISTRY_URI": self.uri,
            **extra,
        }


def _database(pg_url: str, prefix: str) -> tuple[str, str]:
    import psycopg

    admin = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{pg_url.rpartition('/')[0]}/{name}", name


def _drop(pg_url: str, name: str) -> None:
    import psycopg

    admin = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def byo_sqlite(tmp_path_factory: pytest.TempPathFactory) -> ByoStore:
    root = tmp_path_factory.mktemp("byo-sqlite")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return ByoStore("sqlite", uri, root / "data", build_shapes(uri, root / "artifacts"))


@pytest.fixture(scope="session")
def byo_postgresql(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ByoStore]:
    root = tmp_path_factory.mktemp("byo-pg")
    uri, name = _database(pg_url, "cs_byo")
    try:
        yield ByoStore("postgresql", uri, root / "data", build_shapes(uri, root / "artifacts"))
    finally:
        _drop(pg_url, name)


@pytest.fixture(scope="session")
def byo_server(mlflow_server_uri: str, tmp_path_factory: pytest.TempPathFactory) -> ByoStore:
    # The session's server also serves other tests: these experiment and model names are ours.
    root = tmp_path_factory.mktemp("byo-server")
    return ByoStore("server", mlflow_server_uri, root, build_shapes(mlflow_server_uri, None))


@pytest.fixture(scope="session")
def byo_file(tmp_path_factory: pytest.TempPathFactory) -> ByoStore:
    root = tmp_path_factory.mktemp("byo-file")
    shapes = build_file_store(root)
    return ByoStore("file", shapes.uri, root / "data", shapes)


@pytest.fixture(scope="session", params=["sqlite", "postgresql", "server", "file"])
def byo_store(request: pytest.FixtureRequest) -> ByoStore:
    """Each current-schema backend in turn."""
    return request.getfixturevalue(f"byo_{request.param}")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def byo_old_sqlite(tmp_path_factory: pytest.TempPathFactory) -> ByoStore:
    root = tmp_path_factory.mktemp("byo-old")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return ByoStore("sqlite", uri, root / "data", old_runs=build_old_schema_store(uri))


@pytest.fixture(scope="session")
def byo_old_postgresql(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ByoStore]:
    root = tmp_path_factory.mktemp("byo-old-pg")
    uri, name = _database(pg_url, "cs_byo_old")
    try:
        yield ByoStore("postgresql", uri, root / "data", old_runs=build_old_schema_store(uri))
    finally:
        _drop(pg_url, name)


def copy_store(store: ByoStore, target: Path) -> ByoStore:
    """A private, writable copy of a SQLite or file store (artifacts stay where they are)."""
    target.mkdir(parents=True, exist_ok=True)
    if store.backend == "sqlite":
        source = Path(store.uri[len("sqlite:///") :])
        shutil.copy(source, target / "mlflow.db")
        uri = f"sqlite:///{target / 'mlflow.db'}"
    elif store.backend == "file":
        source = Path(store.uri[len("file://") :])
        shutil.copytree(source, target / "mlruns")
        uri = (target / "mlruns").as_uri()
    else:
        raise ValueError(f"cannot copy a {store.backend} store")
    return ByoStore(store.backend, uri, target / "data", store.shapes, store.old_runs)
