"""Demo users created by `seed-demo`: one per role, for the guided demo journey.

The demo passwords are demo data, not secrets: the sign-in page lists them, but only in demo mode
(COUNTERSIGN_DEMO, set by `make run` when it seeded the demo store). The approvers erin and frank
authored none of the demo runs, so separation of duties lets them sign alice's request; alice is
both a requester and a run author, which shows the author rule refusing her own approval.
"""

from __future__ import annotations

from typing import Any

from app.entities import DemoAccount

# `finds` describes the history `seed-demo` writes (app.demo_history.steps); keep them in step.
DEMO_USERS: tuple[DemoAccount, ...] = (
    DemoAccount(
        "alice",
        "requester",
        "alice-demo-pass",
        "data scientist, author of demo runs",
        "Promotions: your six requests (three executed, one rejected, one expired, one "
        "waiting for erin and frank)",
    ),
    DemoAccount(
        "erin",
        "approver",
        "erin-demo-pass",
        "approver",
        "Approvals: one request waiting for your signature (diabetes-progression v3 → champion, "
        "drift gate passed); Overview: an open drift alert on tumor-classifier's champion v2",
    ),
    DemoAccount(
        "frank",
        "approver",
        "frank-demo-pass",
        "approver",
        "Approvals: the same request waiting for your signature; Monitoring over time: three "
        "weeks of daily batches, where tumor-classifier's champion crosses its drift threshold",
    ),
    DemoAccount(
        "admin",
        "admin",
        "admin-demo-pass",
        "MLOps administrator",
        "Overview: your break-glass promotion of tumor-classifier v2 → champion, the "
        "out-of-band move of its champion that you put back, and an open drift alert on that "
        "champion; Admin: the users",
    ),
    DemoAccount(
        "audrey",
        "auditor",
        "audrey-demo-pass",
        "auditor (read-only audit views)",
        "Audit log: three weeks of history, with the daily monitoring batches and the alert, "
        "and a chain that verifies",
    ),
)


def demo_accounts() -> tuple[DemoAccount, ...]:
    """The demo users, for the sign-in page in demo mode."""
    return DEMO_USERS


def ensure_demo_users(facade: Any) -> tuple[str, ...]:
    """Create the demo users that do not exist yet, as the CLI operator; returns their names.

    Idempotent: an existing user (even one changed or disabled since) is left as it is.
    """
    from app.identity import FacadeDirectory
    from governance.domain import CLI_OPERATOR

    directory = FacadeDirectory(facade)
    created = []
    for account in DEMO_USERS:
        if directory.find(account.username) is None:
            display = f"{account.username.capitalize()} (demo {account.role})"
            facade.create_user(
                CLI_OPERATOR, account.username, [account.role], account.password, display
            )
            created.append(account.username)
    return tuple(created)


def seed_demo_users(settings: Any) -> None:
    """`seed-demo`'s part for users: create the demo users in the governance database.

    Prints the names and roles created, never a password. A database whose schema is not there
    yet is left alone with a note (run `python -m app.cli db upgrade`, then seed again).
    """
    import sys

    from app.bootstrap import build_governance
    from governance.errors import SchemaOutOfDate

    try:
        facade = build_governance(settings)
    except SchemaOutOfDate as exc:
        print(f"demo users not created: {exc}", file=sys.stderr)
        return
    try:
        created = ensure_demo_users(facade)
    finally:
        facade.dispose()
    roles = {a.username: a.role for a in DEMO_USERS}
    if created:
        print("demo users created: " + ", ".join(f"{n} ({roles[n]})" for n in created))
    else:
        print("demo users exist: nothing to do")
