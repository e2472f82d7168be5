"""Governance reads the pages show on every visit are cached per person and per state of the
governance database (the audit chain's head), so a change made anywhere shows at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import app.deps as deps
from app import governance_views
from tests.e2e.identity_env import build_governance_db, cli


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    found = build_governance_db(tmp_path / "gov", accounts=(("root", "admin", "root-pass-123"),))
    for key, value in found.items():
        monkeypatch.setenv(key, value)
    deps.clear_caches()
    yield found
    deps.clear_caches()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, object]]]:
    """Every audit read that reaches the database (the real function, counted)."""
    calls: list[tuple[str, dict[str, object]]] = []
    real = governance_views.audit_events

    def counted(facade: object, actor: str, **filters: object) -> object:
        calls.append((actor, filters))
        return real(facade, actor, **filters)  # type: ignore[arg-type]

    monkeypatch.setattr(governance_views, "audit_events", counted)
    return calls


def _add_user(env: dict[str, str], name: str, role: str) -> None:
    cli(env, "users", "add", name, "--role", role, "--password-stdin", stdin="pw-123456\n")


def _actions(actor: str) -> list[str]:
    return [e.action for e in deps.audit_events(actor, limit=50)]


def test_a_repeated_read_is_served_until_the_log_moves(env: dict[str, str], reads: list) -> None:
    first = _actions("root")
    assert _actions("root") == first
    assert len(reads) == 1  # the second visit read the chain's head, not the log

    # A change through another entry point (the CLI, as a second process would) shows at once.
    cli(
        env, "users", "add", "newcomer", "--role", "viewer", "--password-stdin", stdin="pw-123456\n"
    )
    after = _actions("root")
    assert len(reads) == 2
    assert len(after) > len(first)
    assert "newcomer" in " ".join(str(e) for e in deps.audit_events("root", limit=5))


def test_each_person_has_their_own_entry(env: dict[str, str], reads: list) -> None:
    _add_user(env, "audra", "auditor")
    _actions("root")
    _actions("audra")
    _actions("root")
    assert [actor for actor, _ in reads] == ["root", "audra"]


def test_a_refusal_is_not_cached(env: dict[str, str], reads: list) -> None:
    from governance.errors import NotAllowed

    _add_user(env, "vic", "viewer")
    for _ in range(2):
        with pytest.raises(NotAllowed):
            deps.audit_events("vic", limit=5)  # the audit log needs read_audit
    assert len(reads) == 2
    # Granting the role is itself audited: the next read is allowed and fresh.
    cli(env, "users", "roles", "vic", "--role", "auditor")
    assert _actions("vic")
