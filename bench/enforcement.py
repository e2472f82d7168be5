"""`python -m bench.enforcement`: the receiver's intake and the time to put a moved alias back.

One JSON line:

- deliveries_per_s.{sqlite,postgresql}: signed MLflow deliveries the receiver accepts per
  second: the real ASGI app under uvicorn in its own process (HMAC check in constant time, the
  INSERT of the delivery, the answer), driven by CLIENTS keep-alive HTTP connections from this
  process. Target >= 200/s. The worker is not running: this is the intake a flood meets.
- revert_s: a real `mlflow server` (SQLite backend: the start-up is quicker, the webhook path is
  the same), the receiver started by `python -m app.cli webhooks receive`, registered by
  `webhooks register`; MOVES alias moves with MlflowClient, each timed until MLflow's own API
  shows the governed version again (median and p95; target p95 <= 5 s). The moves are spread
  over ALIASES aliases so the loop guard (5 put-backs per target per 10 minutes) never trips.

PostgreSQL: COUNTERSIGN_BENCH_PG_URL or COUNTERSIGN_TEST_PG_URL names the server (a scratch
database is created and dropped).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.governance import scratch_database

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-enforcement-secret"
PASSWORD = "bench-password-1"
CLIENTS = 8
ALIASES = 4
MODEL = "bench-enforced"
POLICY = "version: 1\ndefaults: {quorum: 1, separation_of_duties: false, out_of_band: revert}\n"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_intake(url: str, port: int) -> None:
    """The receiver's app alone (no worker) on 127.0.0.1:port, in a process of its own."""
    import uvicorn

    from app.receiver.app import build_app
    from app.receiver.refusals import RefusalLog
    from governance.db import make_engine
    from governance.mlflow_deliveries import SqlMlflowDeliveries

    deliveries = SqlMlflowDeliveries(make_engine(url))
    app = build_app(SECRET, deliveries, RefusalLog(lambda reason, data: None))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait(port: int, path: str = "/healthz", timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port}")


def _signed(body: bytes) -> dict[str, str]:
    from app.receiver import signature as sig

    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    return {
        "Content-Type": "application/json",
        sig.DELIVERY_HEADER: delivery,
        sig.TIMESTAMP_HEADER: stamp,
        sig.SIGNATURE_HEADER: sig.sign(SECRET, delivery, stamp, body),
    }


def intake(flavour: str, deliveries: int, workdir: Path) -> float:
    """Accepted deliveries per second on one database flavour."""
    from governance.db import make_engine, upgrade

    with scratch_database(flavour, workdir) as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        port = free_port()
        server = multiprocessing.get_context("spawn").Process(
            target=_serve_intake, args=(url, port), daemon=True
        )
        server.start()
        try:
            _wait(port)
            body = json.dumps(
                {"entity": "model_version_alias", "action": "created",
                 "data": {"name": MODEL, "alias": "champion", "version": "1"}}
            ).encode()  # fmt: skip
            per_client = deliveries // CLIENTS
            # Signed in advance: the client's HMAC is not the receiver's cost.
            batches = [[_signed(body) for _ in range(per_client)] for _ in range(CLIENTS)]
            failures: list[int] = []
            start = threading.Barrier(CLIENTS + 1)

            def client(batch: list[dict[str, str]]) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                start.wait()
                for headers in batch:
                    conn.request("POST", "/mlflow/webhooks", body=body, headers=headers)
                    answer = conn.getresponse()
                    answer.read()
                    if answer.status != 200:
                        failures.append(answer.status)
                conn.close()

            threads = [threading.Thread(target=client, args=(b,)) for b in batches]
            for t in threads:
                t.start()
            start.wait()
            began = time.perf_counter()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - began
        finally:
            server.terminate()
            server.join(10)
        if failures:
            raise RuntimeError(f"{len(failures)} deliveries refused: {sorted(set(failures))}")
        return per_client * CLIENTS / elapsed


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    import signal

    for proc in processes:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def revert_times(moves: int, workdir: Path) -> list[float]:
    """Seconds from each alias move until MLflow's API shows the governed version again."""
    from cryptography.fernet import Fernet

    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "COUNTER"))}
    mlflow_port, receiver_port = free_port(), free_port()
    tracking = f"http://127.0.0.1:{mlflow_port}"
    (workdir / "policy.yaml").write_text(POLICY, encoding="utf-8")
    env = {
        **base,
        "PYTHONPATH": str(ROOT),
        "MLFLOW_TRACKING_URI": tracking,
        "COUNTERSIGN_DB_URL": f"sqlite:///{workdir / 'governance.db'}",
        "COUNTERSIGN_DATA_DIR": str(workdir / "data"),
        "COUNTERSIGN_POLICY": str(workdir / "policy.yaml"),
        "COUNTERSIGN_MLFLOW_WEBHOOK_SECRET": SECRET,
    }
    mlflow_env = {
        **base,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
    }
    processes = [
        _start(
            [sys.executable, "-m", "mlflow", "server",
             "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
             "--artifacts-destination", str(workdir / "artifacts"),
             "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"],
            mlflow_env,
            workdir / "mlflow.log",
        )
    ]  # fmt: skip
    try:
        subprocess.run([sys.executable, "-m", "app.cli", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True)  # fmt: skip
        processes.append(
            _start([sys.executable, "-m", "app.cli", "webhooks", "receive", "--host",
                    "127.0.0.1", "--port", str(receiver_port)], env, workdir / "receiver.log")
        )  # fmt: skip
        _wait(mlflow_port, "/health", timeout_s=240)
        _wait(receiver_port, timeout_s=120)
        subprocess.run([sys.executable, "-m", "app.cli", "webhooks", "register", "--mlflow",
                        tracking, "--receiver", f"http://127.0.0.1:{receiver_port}"],
                       cwd=ROOT, env=env, check=True, capture_output=True)  # fmt: skip
        # MLflow's client prints run links on stdout; the benchmark's stdout is its JSON line.
        with contextlib.redirect_stdout(sys.stderr):
            return _time_moves(env, tracking, moves)
    finally:
        _stop(processes)


def _time_moves(env: dict[str, str], tracking: str, moves: int) -> list[float]:
    from mlflow import MlflowClient

    from app.bootstrap import build_governance
    from app.settings import Settings
    from governance.domain import CLI_OPERATOR

    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    run = client.create_run(client.create_experiment("bench"), tags={"mlflow.user": "dora"})
    client.set_terminated(run.info.run_id)
    client.create_registered_model(MODEL)
    for _ in range(2):
        client.create_model_version(MODEL, f"{run.info.artifact_uri}/model", run.info.run_id)
    facade = build_governance(
        Settings.from_env({k: v for k, v in env.items() if k != "PYTHONPATH"})
    )
    facade.create_user(CLI_OPERATOR, "rita", ["requester"], PASSWORD)
    facade.create_user(CLI_OPERATOR, "ann", ["approver"], PASSWORD)
    aliases = [f"champion-{k}" for k in range(ALIASES)]
    for alias in aliases:
        request = facade.request_promotion("rita", MODEL, "1", alias, "benchmark")
        facade.sign_off("ann", request.id, decision="approve", comment="ok",
                        content_hash=request.content_hash, password=PASSWORD)  # fmt: skip
    facade.dispose()
    time.sleep(2)  # let the executions' own deliveries settle
    times = []
    for k in range(moves):
        alias = aliases[k % ALIASES]
        began = time.perf_counter()
        client.set_registered_model_alias(MODEL, alias, "2")
        while str((client.get_registered_model(MODEL).aliases or {}).get(alias)) != "1":
            if time.perf_counter() - began > 60:
                raise RuntimeError(f"{alias} was not put back within 60 s")
            time.sleep(0.05)
        times.append(time.perf_counter() - began)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.enforcement")
    parser.add_argument("--deliveries", type=int, default=4000)
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--flavour", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    flavours = ["sqlite", "postgresql"] if args.flavour == "both" else [args.flavour]
    with tempfile.TemporaryDirectory(prefix="cs-bench-enforcement-") as tmp:
        rates = {}
        for flavour in flavours:
            folder = Path(tmp) / flavour
            folder.mkdir()
            rates[flavour] = round(intake(flavour, args.deliveries, folder), 1)
        moves = Path(tmp) / "moves"
        moves.mkdir()
        times = revert_times(args.moves, moves)
    line: dict[str, Any] = {
        "bench": "enforcement",
        "deliveries_per_s": rates,
        "deliveries": args.deliveries,
        "clients": CLIENTS,
        "revert_s": {
            "median": round(statistics.median(times), 3),
            "p95": round(p95(times), 3),
            "max": round(max(times), 3),
            "moves": len(times),
        },
        "targets": {"deliveries_per_s": 200, "revert_p95_s": 5},
        "cpus": os.cpu_count(),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
