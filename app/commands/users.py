"""`users ...`: accounts and roles, run as the operator principal `system:cli` (whoever runs them
already holds the server's shell). Users are never deleted, only disabled: the audit log refers
to them."""

from __future__ import annotations

import argparse
from typing import Any

from app.commands import _governance_views as views
from app.commands._cli_support import (
    OPERATOR,
    json_flag,
    open_facade,
    password_flag,
    stdin_password,
)


def register(registry: Any) -> None:
    users = registry.group("users", "Users and roles (never deleted: disabled).")
    p = users.add_parser("add", help="create a user; the password is read from stdin")
    p.add_argument("name")
    p.add_argument("--role", action="append", required=True, help="repeat for several roles")
    p.add_argument("--display-name", default="")
    password_flag(p, required=True)
    p.set_defaults(func=_users_add)
    p = users.add_parser("disable", help="disable a user")
    p.add_argument("name")
    p.set_defaults(func=_users_disable)
    p = users.add_parser("enable", help="enable a disabled user again (lifts a lockout)")
    p.add_argument("name")
    p.set_defaults(func=_users_enable)
    p = users.add_parser("roles", help="replace a user's roles")
    p.add_argument("name")
    p.add_argument("--role", action="append", required=True, help="repeat for several roles")
    p.set_defaults(func=_users_roles)
    p = users.add_parser(
        "reset-password",
        help="set a user's password from stdin; they must choose a new one at their next sign-in",
    )
    p.add_argument("name")
    password_flag(p, required=True)
    p.set_defaults(func=_users_reset_password)
    p = users.add_parser(
        "change-password",
        help="choose your own new password: stdin gives the current one, then the new one",
    )
    p.add_argument("name")
    password_flag(p, required=True)
    p.set_defaults(func=_users_change_password)
    p = users.add_parser("list", help="every user with roles")
    json_flag(p)
    p.set_defaults(func=_users_list)


def _users_add(args: argparse.Namespace) -> int:
    password = stdin_password()
    facade = open_facade()
    user = facade.create_user(OPERATOR, args.name, args.role, password, args.display_name)
    print(f"user {user.name} created with role(s) {', '.join(user.roles)}")
    return 0


def _users_disable(args: argparse.Namespace) -> int:
    user = open_facade().disable_user(OPERATOR, args.name)
    print(f"user {user.name} is disabled")
    return 0


def _users_enable(args: argparse.Namespace) -> int:
    user = open_facade().enable_user(OPERATOR, args.name)
    print(f"user {user.name} is enabled")
    return 0


def _users_roles(args: argparse.Namespace) -> int:
    user = open_facade().set_roles(OPERATOR, args.name, args.role)
    print(f"user {user.name} has role(s) {', '.join(user.roles)}")
    return 0


def _users_reset_password(args: argparse.Namespace) -> int:
    password = stdin_password()
    open_facade().reset_password(OPERATOR, args.name, password)
    print(f"password of {args.name} reset: they must choose a new one at their next sign-in")
    return 0


def _users_change_password(args: argparse.Namespace) -> int:
    current, new = stdin_password(), stdin_password()
    user = open_facade().change_password(args.name, current, new)
    print(f"password of {user.name} changed")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    users = open_facade().list_users(OPERATOR)
    if args.json:
        views.emit({"users": [views.user_view(u) for u in users]})
    for user in users if not args.json else ():
        state = "disabled" if user.disabled else "active"
        print(f"{user.name:<24} {state:<9} {', '.join(user.roles)}")
    return 0
