"""Governance commands: `db upgrade`, `request ...`, `audit verify`, `reconcile`, `policy check`
(`users ...` lives in app.commands.users).

Mutating commands on behalf of a person authenticate them first (`--as NAME` plus the password
as the first line of stdin); an unknown user and a wrong password get the same one-line answer.
Operator commands (`users add|disable|enable|roles`, `request execute`, `reconcile`,
`audit verify`) run as the principal `system:cli`: whoever runs them already holds the server's
shell. Refusals are GovernanceErrors, which `app.cli` prints as one line with a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.commands import _governance_views as views
from app.commands._cli_support import (
    OPERATOR,
    acting,
    actor_flags,
    json_flag,
    open_facade,
    person,
)
from app.commands.checkpoints import checkpoint_flags, verify_with_checkpoints

TERMINAL = {"rejected": 1, "cancelled": 1, "expired": 1, "superseded": 1, "executed": 0}


def register(registry: Any) -> None:
    db = registry.group("db", "The governance database.")
    db.add_parser("upgrade", help="create or migrate the schema").set_defaults(func=_db_upgrade)

    req = registry.group("request", "Promotion requests.")
    p = req.add_parser("create", help="ask to move a model version to a target")
    p.add_argument("--model", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--target", required=True, help="an alias (e.g. champion) or a stage")
    p.add_argument("--justification", required=True)
    actor_flags(p)
    p.set_defaults(func=_request_create)
    for name, decision in (("approve", "approve"), ("reject", "reject")):
        p = req.add_parser(name, help=f"{name} a pending request (electronic signature)")
        p.add_argument("id")
        p.add_argument("--comment", required=True)
        p.add_argument("--content-hash", help="the content you reviewed (default: current)")
        actor_flags(p)
        p.set_defaults(func=_request_sign, decision=decision)
    p = req.add_parser("cancel", help="withdraw your pending request")
    p.add_argument("id")
    p.add_argument("--reason", default="")
    actor_flags(p)
    p.set_defaults(func=_request_cancel)
    p = req.add_parser("execute", help="apply an approved request again (retry)")
    p.add_argument("id")
    actor_flags(p, required=False)
    p.set_defaults(func=_request_execute)
    p = req.add_parser("rollback", help="ask to restore the previous holder of a target")
    p.add_argument("--model", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--version", help="an earlier recorded holder (default: the one before)")
    p.add_argument("--justification", required=True)
    actor_flags(p)
    p.set_defaults(func=_request_rollback)
    p = req.add_parser(
        "break-glass", help="promote AT ONCE without approvals (admins); a review follows"
    )
    p.add_argument("--model", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--justification", required=True)
    actor_flags(p)
    p.set_defaults(func=_request_break_glass)
    p = req.add_parser("show", help="one request with its votes")
    p.add_argument("id")
    json_flag(p)
    p.set_defaults(func=_request_show)
    p = req.add_parser("list", help="requests, newest first")
    p.add_argument("--state")
    p.add_argument("--model")
    json_flag(p)
    p.set_defaults(func=_request_list)
    p = req.add_parser("wait", help="wait until executed (0), closed (1) or timed out (2)")
    p.add_argument("id")
    p.add_argument("--timeout", type=float, required=True, help="seconds")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    p.set_defaults(func=_request_wait)

    audit = registry.group("audit", "The hash-chained audit log.")
    p = audit.add_parser(
        "verify", help="recompute the chain (and compare signed checkpoints with it)"
    )
    json_flag(p)
    checkpoint_flags(p)
    p.add_argument(
        "--public-key", action="append", type=Path, help="PEM key that signed the checkpoints"
    )
    p.set_defaults(func=_audit_verify)

    p = registry.command("reconcile", "Record differences between MLflow and the ledger.")
    p.add_argument("--model", action="append", help="limit to these models")
    json_flag(p)
    p.set_defaults(func=_reconcile)

    policy = registry.group("policy", "The approval policy.")
    p = policy.add_parser("check", help="validate a policy file (default: the configured one)")
    p.add_argument("file", nargs="?")
    p.set_defaults(func=_policy_check)


def _db_upgrade(args: argparse.Namespace) -> int:
    from app.bootstrap import upgrade_governance_db
    from app.settings import Settings

    before, after = upgrade_governance_db(Settings.from_env())
    print(
        f"governance schema already at {after}"
        if before == after
        else f"governance schema upgraded from {before or 'empty'} to {after}"
    )
    return 0


def _request_create(args: argparse.Namespace) -> int:
    facade = open_facade()
    actor, _ = person(facade, args)
    request = facade.request_promotion(
        actor, args.model, args.version, args.target, args.justification
    )
    if args.json:
        views.emit(views.request_view(request))
    else:
        print(f"request {request.id} created: {views.request_line(request)}")
    return 0


def _request_sign(args: argparse.Namespace) -> int:
    facade = open_facade()
    actor, password = person(facade, args)
    content_hash = args.content_hash or facade.get_request(actor, args.id).request.content_hash
    result = facade.sign_off(
        actor,
        args.id,
        decision=args.decision,
        comment=args.comment,
        content_hash=content_hash,
        password=password,
    )
    if args.json:
        view = views.request_view(result.request)
        view.update(
            vote=views.vote_view(result.vote),
            already_recorded=result.already_recorded,
            approvals=result.approvals,
            quorum=result.quorum,
            message=result.message,
        )
        views.emit(view)
    else:
        print(f"request {result.request.id}: {result.message}; now {result.request.state}")
    return 0


def _request_cancel(args: argparse.Namespace) -> int:
    facade = open_facade()
    actor, _ = person(facade, args)
    request = facade.cancel(actor, args.id, args.reason)
    _show_request(args, request, "cancelled")
    return 0


def _request_execute(args: argparse.Namespace) -> int:
    facade = open_facade()
    result = facade.execute(acting(facade, args), args.id)
    if args.json:
        view = views.request_view(result.request)
        view.update(executed_now=result.executed_now)
        views.emit(view)
    else:
        done = "executed" if result.executed_now else "unchanged"
        print(f"request {result.request.id}: {done}; now {result.request.state}")
    return 0 if result.succeeded else 1


def _request_rollback(args: argparse.Namespace) -> int:
    facade = open_facade()
    actor, _ = person(facade, args)
    request = facade.request_rollback(
        actor, args.model, args.target, args.justification, args.version
    )
    _show_request(args, request, "created")
    return 0


def _request_break_glass(args: argparse.Namespace) -> int:
    facade = open_facade()
    actor, password = person(facade, args)
    result = facade.break_glass(
        actor, args.model, args.version, args.target, args.justification, password=password
    )
    if args.json:
        view = views.request_view(result.execution.request)
        view.update(follow_up=result.follow_up.id)
        views.emit(view)
    else:
        print(
            f"BREAK-GLASS request {result.request.id}: now {result.execution.request.state}; "
            f"follow-up review {result.follow_up.id} opened"
        )
    return 0


def _show_request(args: argparse.Namespace, request: Any, verb: str) -> None:
    if args.json:
        views.emit(views.request_view(request))
    else:
        print(f"request {request.id} {verb}: {views.request_line(request)}")


def _request_show(args: argparse.Namespace) -> int:
    details = open_facade().get_request(OPERATOR, args.id)
    if args.json:
        views.emit(views.details_view(details))
        return 0
    print(views.request_line(details.request))
    print(f"approvals {details.approvals} of {details.quorum}")
    for vote in details.votes:
        print(f"  {vote.decision:<8} {vote.approver} ({vote.role_at_signing}): {vote.comment}")
    return 0


def _request_list(args: argparse.Namespace) -> int:
    found = open_facade().list_requests(OPERATOR, state=args.state, model=args.model)
    if args.json:
        views.emit({"requests": [views.request_view(r) for r in found]})
    for request in found if not args.json else ():
        print(views.request_line(request))
    return 0


def _request_wait(args: argparse.Namespace) -> int:
    facade = open_facade()
    deadline = time.monotonic() + max(0.0, args.timeout)
    while True:
        request = facade.get_request(OPERATOR, args.id).request
        state = str(request.state)
        if state == "pending" and request.expires_at <= datetime.now(UTC):
            state = "expired"
        if state in TERMINAL:
            print(f"request {request.id} is {state}")
            return TERMINAL[state]
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"request {request.id} is still {state} after {args.timeout:g} s")
            return 2
        time.sleep(min(max(args.interval, 0.1), left))


def _audit_verify(args: argparse.Namespace) -> int:
    if args.checkpoint or args.checkpoints or args.public_key:
        return verify_with_checkpoints(args)
    result = open_facade().verify_audit(OPERATOR)
    if args.json:
        views.emit(result.as_dict())
    elif result.ok:
        print(f"audit chain verified: {result.count} entries, head {result.head_hash}")
    else:
        print(
            f"audit chain broken at seq {result.first_broken_seq}: {result.reason}",
            file=sys.stderr,
        )
    return 0 if result.ok else 1


def _reconcile(args: argparse.Namespace) -> int:
    models = tuple(args.model) if args.model else None
    findings = open_facade().reconcile(OPERATOR, models)
    if args.json:
        views.emit({"findings": [views.finding_view(f) for f in findings]})
        return 0
    if not findings:
        print("registry and ledger agree")
    for f in findings:
        new = "new" if f.newly_recorded else "known"
        print(
            f"out-of-band ({new}): {f.model} {f.target_kind} {f.target} is "
            f"{', '.join(f.registry_versions) or 'unset'}; ledger says {f.ledger_version}"
        )
    return 0


def _policy_check(args: argparse.Namespace) -> int:
    from app.settings import Settings
    from governance.policy import load_policy_file

    path = args.file or str(Settings.from_env().policy_path)
    policy = load_policy_file(path)
    print(f"policy {path} is valid (hash {policy.hash})")
    return 0
