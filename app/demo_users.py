"""Demo users created by `seed-demo`: one per role, for the guided demo journey.

The demo passwords are demo data, not secrets: the sign-in page lists them, but only in demo mode
(COUNTERSIGN_DEMO, set by `make run` when it seeded the demo store). The approvers erin and frank
authored none of the demo runs, so separation of duties lets them sign alice's request; alice is
both a requester and a run author, which shows the author rule refusing her own approval.
"""

from __future__ import annotations

from app.entities import DemoAccount

DEMO_USERS: tuple[DemoAccount, ...] = (
    DemoAccount("alice", "requester", "alice-demo-pass", "data scientist, author of demo runs"),
    DemoAccount("erin", "approver", "erin-demo-pass", "approver"),
    DemoAccount("frank", "approver", "frank-demo-pass", "approver"),
    DemoAccount("admin", "admin", "admin-demo-pass", "MLOps administrator"),
    DemoAccount("audrey", "auditor", "audrey-demo-pass", "auditor (read-only audit views)"),
)


def demo_accounts() -> tuple[DemoAccount, ...]:
    """The demo users, for the sign-in page in demo mode."""
    return DEMO_USERS
