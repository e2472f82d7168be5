"""`audit export`, `audit keygen` and `audit verify-bundle`.

These join the shared `audit` group (the governance commands add `audit verify`,
`app.commands.checkpoints` adds `audit checkpoint`). Heavy imports stay inside the handlers;
`verify-bundle` touches neither the database nor MLflow.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from app.commands.checkpoints import checkpoint_flags, kept_checkpoints, public_keys
from app.errors import InvalidInput

AUDIT_HELP = "audit log: verify, export, sign checkpoints"


def register(registry: Any) -> None:
    group = registry.group("audit", AUDIT_HELP)

    export = group.add_parser("export", help="write a signed audit bundle (zip)")
    export.add_argument("--out", required=True, type=Path, help="the zip file to write")
    export.add_argument("--model", action="append", default=[], help="a model (repeatable)")
    export.add_argument("--request", help="one request id")
    export.add_argument("--since", help="start of the period (UTC date or ISO time, inclusive)")
    export.add_argument("--until", help="end of the period (UTC date: whole day included)")
    export.set_defaults(func=cmd_export)

    keygen = group.add_parser("keygen", help="create an Ed25519 signing key pair")
    keygen.add_argument("--private", required=True, type=Path, help="private key file (0600)")
    keygen.add_argument("--public", required=True, type=Path, help="public key file")
    keygen.set_defaults(func=cmd_keygen)

    verify = group.add_parser(
        "verify-bundle", help="verify an audit bundle offline with the exporter's public key"
    )
    verify.add_argument("bundle", type=Path, help="the zip to check")
    verify.add_argument(
        "--public-key",
        required=True,
        action="append",
        type=Path,
        help="PEM public key (repeat it for keys rotated out that signed kept checkpoints)",
    )
    checkpoint_flags(verify)
    verify.set_defaults(func=cmd_verify_bundle)


def parse_moment(text: str | None, *, end: bool) -> datetime | None:
    """A UTC moment from a date (`2026-11-01`) or an ISO time; a date as --until means the
    whole day, so it becomes the next midnight (the bound is exclusive)."""
    if text is None:
        return None
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime.combine(day, time(0), tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO time (YYYY-MM-DDTHH:MM[:SS][Z])"
        ) from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def exporter_name() -> str:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return f"system:cli ({who})"


def cmd_export(args: argparse.Namespace) -> int:
    from app import __version__
    from app.export.bundle import write_bundle
    from app.export.model import ExportScope
    from app.export.signing import load_private_key
    from app.settings import Settings

    settings = Settings.from_env()
    key = load_private_key(settings.signing_key_path)  # fail before touching anything else
    scope = ExportScope(
        models=tuple(dict.fromkeys(args.model)),
        request_id=args.request,
        since=parse_moment(args.since, end=False),
        until=parse_moment(args.until, end=True),
        exporter=exporter_name(),
        app_version=__version__,
    )
    out: Path = args.out
    if out.parent and not out.parent.is_dir():
        raise InvalidInput(f"{out.parent} is not a directory")
    tmp = out.with_name(out.name + ".partial")
    from app.bootstrap import build_governance  # the database only now
    from app.export.api import record_export
    from app.export.store_source import facade_source
    from governance.domain import CLI_OPERATOR

    # The CLI runs as the operator principal (system:cli), which may export by the matrix.
    facade = build_governance(settings)
    try:
        try:
            summary = write_bundle(facade_source(facade), scope, key, tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)  # never leave half a bundle behind
            raise
        try:
            tmp.replace(out)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from exc
        record_export(facade, CLI_OPERATOR, scope, summary)
    finally:
        facade.dispose()
    state = "chain verified" if summary.chain_ok else "CHAIN BROKEN (see the report)"
    print(
        f"wrote {out}: {summary.events} events (seq {summary.first_seq}-{summary.last_seq}, "
        f"{summary.in_scope} in scope), {summary.requests} requests, {state}, "
        f"signed by key {summary.key_id}"
    )
    return 0 if summary.chain_ok else 1


def cmd_keygen(args: argparse.Namespace) -> int:
    from app.export.signing import generate_keypair

    kid = generate_keypair(args.private, args.public)
    print(f"wrote {args.private} (private, mode 0600) and {args.public} (public); key id {kid}")
    return 0


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    from app.export.verify import BundleProblem, verify_bundle

    keys = public_keys(args.public_key)
    checkpoints = kept_checkpoints(args)
    if not args.bundle.is_file():
        raise InvalidInput(f"{args.bundle} does not exist")
    try:
        check = verify_bundle(args.bundle, keys, checkpoints)
    except BundleProblem as problem:
        print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    print(check.line())
    return 0
