"""What the governance commands share: flags, the password from stdin, acting as a person."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.facade import GovernanceFacade

OPERATOR = "system:cli"


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def password_flag(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        required=required,
        help="read the password from the first line of stdin",
    )


def actor_flags(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("--as", dest="actor", required=required, metavar="USER")
    password_flag(parser, required=required)
    json_flag(parser)


def stdin_password() -> str:
    from governance.errors import InvalidInput

    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise InvalidInput("no password on stdin (use --password-stdin and pipe it in)")
    return password


def open_facade() -> GovernanceFacade:
    """The governance facade over the configured database (one per command)."""
    from app.bootstrap import build_governance
    from app.settings import Settings

    return build_governance(Settings.from_env())


def person(facade: GovernanceFacade, args: argparse.Namespace) -> tuple[str, str]:
    """Authenticate `--as` with the password from stdin; returns (name, password)."""
    from governance.errors import InvalidInput

    if not args.password_stdin:
        raise InvalidInput("--as needs --password-stdin")
    password = stdin_password()
    return facade.authenticate(args.actor, password).name, password


def acting(facade: GovernanceFacade, args: argparse.Namespace) -> str:
    return person(facade, args)[0] if args.actor else OPERATOR
