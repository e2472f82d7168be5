"""Driving every page through AppTest over one store, and reading what it shows.

A `Visit` is one page with a user and a query string (and toggles to flip); `browse` runs a list
of visits against the environment the caller set and returns what each showed, so a test can
check every page of a store in one pass and report all failing pages at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.entities import SignedInUser
from app.ui.guard import SESSION_KEY
from tests.e2e.gov_env import ROLES
from tests.e2e.identity_env import run_cli

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120  # the first page imports mlflow on a busy machine
TEXT_KINDS = (
    "title", "header", "subheader", "markdown", "caption", "info", "warning", "success", "error",
)  # fmt: skip


@dataclass(frozen=True)
class Visit:
    page: str
    user: str = "vic"
    query: Mapping[str, str] = field(default_factory=dict)
    toggles: Mapping[str, bool] = field(default_factory=dict)
    state: Mapping[str, str] = field(default_factory=dict)  # e.g. the open tab of a page
    expect: Sequence[str] = ()  # texts the page must show
    allowed_errors: Sequence[str] = ()  # error banners that are the right answer here

    @property
    def name(self) -> str:
        shown = "&".join(f"{k}={v}" for k, v in self.query.items())
        flipped = "".join(f"+{k}" for k in self.toggles)
        opened = "".join(f"#{v}" for v in self.state.values())
        return f"{self.page}?{shown}{flipped}{opened}"


@dataclass(frozen=True)
class Seen:
    """What a page showed: exceptions, error banners, every text, and the tables."""

    visit: Visit
    exceptions: list[str]
    errors: list[str]
    texts: str
    frames: list[object]

    def problems(self) -> list[str]:
        out = [f"exception: {e[:300]}" for e in self.exceptions]
        out += [
            f"error banner: {e[:300]}"
            for e in self.errors
            if not any(a in e for a in self.visit.allowed_errors)
        ]
        out += [f"missing text: {t!r}" for t in self.visit.expect if t not in self.texts]
        return out


def _texts(at: AppTest) -> str:
    parts: list[str] = []
    for kind in TEXT_KINDS:
        parts.extend(str(e.value) for e in getattr(at, kind))
    parts.extend(str(e.label) for e in at.expander)
    for table in [*at.dataframe, *at.table]:  # tables too: a run name or a holder shows up in one
        frame = getattr(table.value, "data", table.value)  # a Styler keeps its frame in .data
        parts.append(frame.to_csv(index=False) if hasattr(frame, "to_csv") else str(frame))
    return plain("\n".join(parts))


def plain(text: str) -> str:
    """Markdown escapes (`\\(`, a word joiner after `:`) are how untrusted text is shown: the
    text they stand for."""
    return re.sub(r"\\(.)", r"\1", text).replace("\u2060", "")


def run_visit(visit: Visit) -> tuple[AppTest, Seen]:
    at = AppTest.from_file(str(ROOT / "pages" / f"{visit.page}.py"), default_timeout=TIMEOUT)
    now = datetime.now(UTC)
    roles = ROLES[visit.user]
    at.session_state[SESSION_KEY] = SignedInUser(visit.user, roles, "local", now, now, visit.user)
    at.query_params.update(dict(visit.query))
    for key, value in visit.state.items():
        at.session_state[key] = value
    at.run(timeout=TIMEOUT)
    for key, value in visit.toggles.items():
        at.toggle(key=key).set_value(value)
    if visit.toggles:
        at.run(timeout=TIMEOUT)
    seen = Seen(
        visit,
        [str(e.value) for e in at.exception],
        [plain(str(e.value)) for e in at.error],
        _texts(at),
        [d.value for d in at.dataframe],
    )
    return at, seen


def browse(visits: Sequence[Visit]) -> dict[str, Seen]:
    return {v.name: run_visit(v)[1] for v in visits}


def report(seen: Mapping[str, Seen]) -> list[str]:
    """One line per problem, prefixed by the page visited (empty when every page is clean)."""
    return [f"{name}: {p}" for name, s in seen.items() for p in s.problems()]


def cli(env: Mapping[str, str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    """`python -m app.cli ARGS` through its entry point in this process; (exit code, out, err)."""
    result = run_cli(env, *args, stdin=stdin)
    return result.returncode, result.stdout, result.stderr
