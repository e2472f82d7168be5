"""`python -m app.cli ...`: the operators' and pipelines' door to the same facade as the pages.

Command groups live in `app/commands/*`; each registers its subcommands here. A refusal or a
user mistake prints one line on stderr and exits non-zero; it never prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from app.errors import UserFacingError, message_of
from app.log_redaction import install_log_redaction
from app.settings import SettingsError
from governance.errors import GovernanceError

# Modules that register commands; each exposes `register(registry: CommandRegistry)`.
COMMAND_MODULES: tuple[str, ...] = (
    "app.commands.demo",
    "app.commands.drift",
    "app.commands.exports",
    "app.commands.governance",
    "app.commands.users",
    "app.commands.webhooks",
    "app.commands.receiver",
    "app.commands.history",
    "app.commands.metrics",
    "app.commands.reseal",
    "app.commands.checkpoints",
    "app.commands.monitor",
    "app.commands.store",
)


class CommandRegistry:
    """Hands out top-level commands and shared groups (e.g. `audit`) to the command modules."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
        self._groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}

    def command(self, name: str, help_text: str) -> argparse.ArgumentParser:
        """A top-level command such as `seed-demo` or `reconcile`."""
        return self._sub.add_parser(name, help=help_text, description=help_text)

    def group(
        self, name: str, help_text: str = ""
    ) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        """A command group such as `audit` whose subcommands several modules contribute."""
        if name not in self._groups:
            parser = self._sub.add_parser(name, help=help_text, description=help_text)
            self._groups[name] = parser.add_subparsers(
                dest=f"{name}_command", metavar="SUBCOMMAND", required=True
            )
        return self._groups[name]


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.cli", description="Countersign command line"
    )
    registry = CommandRegistry(parser)
    for module_name in modules:
        importlib.import_module(module_name).register(registry)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from app.bootstrap import harden_process

    harden_process()
    install_log_redaction()
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args) or 0)
    except (UserFacingError, GovernanceError, SettingsError) as exc:
        print(f"error: {message_of(exc)}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
