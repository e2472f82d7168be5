"""The model worker's confinement, attacked from inside a model.

A hostile model, loaded only inside a real worker, tries what code of the app's user could do
without the sandbox: connect to a TCP port on 127.0.0.1 (a listener of this test, and
PostgreSQL's 5432), read a governance SQLite file, the Ed25519 signing key and the repository's
`.streamlit` folder, read the app's environment through /proc/<app pid>/environ, signal the app
process, write outside its folder, start a hundred processes. Every attempt must fail. It
reports what it saw on stderr (the launcher keeps that in `answer.err` of the worker's folder).

Where the host refuses the namespaces (a seccomp filter like Docker's default profile, installed
in a real child process here), the worker refuses to load the model and says which setting
accepts the risk; with that setting (`limits-only`) it runs and warns.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.errors import InvalidInput
from app.export.signing import generate_keypair
from app.model_worker.launcher import ROOT, WorkerLimits, run_worker
from tests.integration.test_model_worker import _workdir, save_plain_model

pytestmark = pytest.mark.slow

ATTACK = """
import json, os, socket, sys

def attempt(action):
    try:
        return {"ok": True, "value": repr(action())[:120]}
    except BaseException as exc:
        return {"ok": False, "error": type(exc).__name__}

def connect(port):
    socket.create_connection(("127.0.0.1", port), timeout=3).close()

def fork_bomb():
    held, release = os.pipe()
    children = []
    try:
        for _ in range(100):
            pid = os.fork()
            if pid == 0:  # stays alive until the parent gives up
                os.close(release)
                os.read(held, 1)
                os._exit(0)
            children.append(pid)
    finally:
        os.close(release)
        for pid in children:
            os.waitpid(pid, 0)
    return len(children)

report = {
    "listener": attempt(lambda: connect(LISTENER)),
    "postgres": attempt(lambda: connect(5432)),
    "governance_db": attempt(lambda: open(DB, "rb").read(16)),
    "signing_key": attempt(lambda: open(KEY, "rb").read()),
    "streamlit_folder": attempt(lambda: os.listdir(STREAMLIT)),
    "app_environ": attempt(lambda: open(f"/proc/{APP_PID}/environ", "rb").read()),
    "signal_app": attempt(lambda: os.kill(APP_PID, 0)),
    "write_outside": attempt(lambda: open(OUTSIDE, "w").write("escaped")),
    "write_own_folder": attempt(lambda: open("escaped.txt", "w").write("x")),
    "fork_bomb": attempt(fork_bomb),
    "uid": os.getuid(),
    "threads": len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 0,
}
sys.stderr.write("ATTACK " + json.dumps(report) + "\\n")
"""


def _attack_code(**values: Any) -> str:
    source = "".join(f"{k} = {v!r}\n" for k, v in values.items()) + ATTACK
    return f"exec({source!r}, {{}})"


def _report(workdir: Path) -> dict[str, Any]:
    lines = (workdir / "answer.err").read_text(encoding="utf-8").splitlines()
    found = [line[len("ATTACK ") :] for line in lines if line.startswith("ATTACK ")]
    assert found, "the payload did not run"
    return json.loads(found[-1])


def test_a_hostile_model_reaches_no_secret_no_network_and_no_process_of_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTERSIGN_DB_URL", "postgresql://app:db-secret-1@db/gov")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = data_dir / "governance.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, entry_hash TEXT)")
    generate_keypair(tmp_path / "signing.pem", tmp_path / "signing.pub.pem")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    code = _attack_code(
        LISTENER=listener.getsockname()[1],
        DB=str(db),
        KEY=str(tmp_path / "signing.pem"),
        STREAMLIT=str(ROOT / ".streamlit"),
        APP_PID=os.getpid(),
        OUTSIDE=str(tmp_path / "escaped.txt"),
    )
    workdir = _workdir(tmp_path, code)
    try:
        with pytest.raises(InvalidInput, match="could not compute importance"):
            run_worker(workdir, WorkerLimits())
    finally:
        listener.close()
    report = _report(workdir)
    attempts = {k: v for k, v in report.items() if isinstance(v, dict)}
    assert not [name for name, result in attempts.items() if result["ok"]], report
    assert attempts["listener"]["error"] == "OSError"  # the network is unreachable
    assert attempts["app_environ"]["error"] == "FileNotFoundError"  # no such process in view
    assert attempts["signal_app"]["error"] == "ProcessLookupError"
    assert attempts["fork_bomb"]["error"] == "BlockingIOError"  # past 32 processes
    assert not (tmp_path / "escaped.txt").exists()
    assert not (workdir / "escaped.txt").exists()
    if os.geteuid() == 0:
        assert report["uid"] == 65534  # a worker started as root runs as nobody


# A seccomp filter that makes unshare(2) fail with EPERM, as Docker's default profile does for a
# container without CAP_SYS_ADMIN; installed in a real child process that then runs the worker.
UNSHARE = {"x86_64": 272, "aarch64": 97}
RUNNER = """
import ctypes, json, logging, sys
from pathlib import Path
sys.path.insert(0, {root!r})
libc = ctypes.CDLL(None, use_errno=True)
class Instruction(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]
class Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(Instruction))]
rules = (Instruction * 4)(
    Instruction(0x20, 0, 0, 0),                 # load the syscall number
    Instruction(0x15, 0, 1, {unshare}),         # unshare?
    Instruction(0x06, 0, 0, 0x00050000 | 1),    # fail with EPERM
    Instruction(0x06, 0, 0, 0x7FFF0000),        # allow everything else
)
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(22, 2, ctypes.byref(Program(4, rules)), 0, 0) == 0
from app.model_worker.launcher import WorkerLimits, compute_importance
from app.errors import InvalidInput
import pandas as pd
frame = pd.read_parquet({data!r})
try:
    result = compute_importance(Path({model!r}), frame, "target", Path({work!r}),
                                WorkerLimits(isolation={isolation!r}), "m", "1")
    print(json.dumps({{"method": result.method}}))
except InvalidInput as exc:
    print(json.dumps({{"refused": str(exc)}}))
"""


@pytest.mark.skipif(platform.machine() not in UNSHARE, reason="seccomp filter written for x86-64")
@pytest.mark.parametrize("isolation", ["namespaces", "limits-only"])
def test_where_the_host_refuses_namespaces_the_worker_refuses_unless_told_otherwise(
    tmp_path: Path, isolation: str
) -> None:
    from tests.hostile_model import frames

    work = tmp_path / "work"
    work.mkdir()
    model = save_plain_model(work / "model")
    reference, _ = frames()
    reference.to_parquet(tmp_path / "reference.parquet", index=False)
    script = RUNNER.format(
        root=str(ROOT),
        unshare=UNSHARE[platform.machine()],
        data=str(tmp_path / "reference.parquet"),
        model=str(model),
        work=str(work),
        isolation=isolation,
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    if isolation == "namespaces":
        assert "refused" in answer, answer
        assert (
            "cannot isolate itself on this server (unshare: Operation not permitted)"
            in (answer["refused"])
        )
        assert "COUNTERSIGN_MODEL_WORKER_ISOLATION=limits-only" in answer["refused"]
    else:
        assert answer == {"method": "|coefficient|"}
        assert "model worker runs without isolation" in proc.stderr
