"""Session fixtures over real MLflow stores, shared by every team's tests.

- `demo_data_dir`: a data dir with the demo store seeded once per session (about 40 s).
- `demo_settings`: Settings pointing at it (COUNTERSIGN_DATA_DIR only, as `make run` does).
- `mlflow_server_uri`: a real `mlflow server` on 127.0.0.1 over a SQLite copy of the demo store
  (same run ids; artifacts are read from the demo data dir), yielding http://127.0.0.1:PORT.
- `demo_store_copy`: a function that returns Settings for a private, writable copy of the demo
  store, for tests that change aliases, stages or tags.

Never change the shared demo store itself: copy it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.settings import Settings

SERVER_START_TIMEOUT_S = 180


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_for(data_dir: Path, **env: str) -> Settings:
    return Settings.from_env(env={"COUNTERSIGN_DATA_DIR": str(data_dir), **env})


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose demo MLflow store was seeded once for this session."""
    from app.mlflow_gateway.demo_seed import seed_demo

    data_dir = tmp_path_factory.mktemp("demo-data")
    seed_demo(settings_for(data_dir), echo=lambda _line: None)
    return data_dir


@pytest.fixture(scope="session")
def demo_settings(demo_data_dir: Path) -> Settings:
    """Settings for the seeded demo store (tracking and registry: its SQLite file)."""
    return settings_for(demo_data_dir)


@pytest.fixture
def demo_store_copy(
    demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], Settings]:
    """Make a private copy of the demo store database (artifacts stay shared, read-only)."""

    def make() -> Settings:
        target = tmp_path_factory.mktemp("demo-copy")
        shutil.copy(demo_data_dir / "mlflow.db", target / "mlflow.db")
        return settings_for(target)

    return make


@pytest.fixture(scope="session")
def mlflow_server_uri(
    demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 over a copy of the demo store."""
    root = tmp_path_factory.mktemp("mlflow-server")
    shutil.copy(demo_data_dir / "mlflow.db", root / "mlflow.db")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # No background job runner: it costs start-up time and the tests never schedule jobs.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "artifacts"),
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            ],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(uri, proc, log_path)
        yield uri
    finally:
        _stop(proc)


def _wait_healthy(uri: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    _stop(proc)
    pytest.fail(f"mlflow server did not become healthy: {log_path.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    # The server runs in its own session: stop it and the workers it spawned, nothing else.
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
