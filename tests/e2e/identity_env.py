"""A governance database for sign-in tests, built through the real CLI (`db upgrade`, `users add`).

The MLflow tracking URI points at an empty SQLite file in the same folder: the sign-in gate does
not need runs, and the pages behind it answer an empty store with a message.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# name, role, password: the accounts every sign-in test may use.
ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("root", "admin", "root-pass-123"),
    ("vic", "viewer", "vic-pass-1234"),
    ("erin", "approver", "erin-pass-123"),
    ("lou", "requester", "lou-pass-1234"),  # the lockout tests lock this one
    ("lee", "requester", "lee-pass-1234"),  # the browser lockout test locks this one
)


def identity_env(folder: Path, **extra: str) -> dict[str, str]:
    """The environment of an app or CLI over the governance database in `folder`."""
    env = {
        "COUNTERSIGN_DATA_DIR": str(folder),
        "COUNTERSIGN_DB_URL": f"sqlite:///{folder / 'governance.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "COUNTERSIGN_AUTH": "local",
        "COUNTERSIGN_DEMO": "",
        "COUNTERSIGN_LOCKOUT_ATTEMPTS": "3",
        "COUNTERSIGN_LOCKOUT_MINUTES": "15",
    }
    env.update(extra)
    return env


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """`env` on top of this process's environment, put back as it was afterwards."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_cli(env: Mapping[str, str], *args: str, stdin: str = "") -> CliResult:
    """`python -m app.cli ARGS` through its entry point, in this process (a subprocess would pay
    the imports again for every call), with `env` on top of this environment."""
    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        sys.stdin = saved_stdin
    return CliResult(code, out.getvalue(), err.getvalue())


def cli(env: Mapping[str, str], *args: str, stdin: str = "") -> CliResult:
    """`run_cli` that must succeed."""
    result = run_cli(env, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result


def build_governance_db(
    folder: Path, accounts: Iterable[tuple[str, str, str]] = ACCOUNTS
) -> dict[str, str]:
    """Migrate a fresh governance database and add the accounts; returns its environment."""
    folder.mkdir(parents=True, exist_ok=True)
    env = identity_env(folder)
    cli(env, "db", "upgrade")
    for name, role, password in accounts:
        cli(env, "users", "add", name, "--role", role, "--password-stdin", stdin=password + "\n")
    return env
