"""The container entrypoint, run for real outside a container (no Docker daemon here).

`serve` must migrate the governance database before Streamlit answers its health endpoint;
any other command must pass through unchanged.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from governance.db import check_schema, head_revision, make_engine

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "docker-entrypoint.sh"


def environment(tmp_path: Path, port: int) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "COUNTER"))}
    return {
        **base,
        # `python` on PATH is this interpreter, as it is the image's in the container
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "COUNTERSIGN_DATA_DIR": str(tmp_path),
        "COUNTERSIGN_DB_URL": f"sqlite:///{tmp_path / 'governance.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "STREAMLIT_SERVER_ADDRESS": "127.0.0.1",
        "STREAMLIT_SERVER_PORT": str(port),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_migrates_the_database_and_then_answers_the_health_check(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["sh", str(ENTRYPOINT), "serve"],
            cwd=ROOT,
            env=environment(tmp_path, port),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        healthy = False
        while time.monotonic() < deadline and not healthy:
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            try:
                url = f"http://127.0.0.1:{port}/_stcore/health"
                with urllib.request.urlopen(url, timeout=2) as response:
                    healthy = response.status == 200
            except OSError:
                time.sleep(0.3)
        assert healthy, log.read_text(errors="replace")[-2000:]
        engine = make_engine(f"sqlite:///{tmp_path / 'governance.db'}")
        try:
            check_schema(engine)  # migrated before Streamlit started serving
        finally:
            engine.dispose()
        text = log.read_text(errors="replace")
        assert text.index(head_revision()) < text.index("Streamlit")  # the shipped head
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_any_other_command_passes_through(tmp_path: Path) -> None:
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "python", "-m", "app.cli", "db", "upgrade"],
        cwd=ROOT,
        env=environment(tmp_path, free_port()),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "governance.db").is_file()
