"""`audit checkpoint` and `audit verify --checkpoint`: signed chain heads kept off the database.

Somebody with write access to the governance database can rewrite the chain consistently (drop
the append-only triggers, recompute every hash, move the head); the chain then verifies on its
own. What they cannot do is sign: the Ed25519 key lives outside the database. So

- `audit checkpoint` verifies the whole chain and refuses to sign a broken one; with `--previous`
  (the shipped jobs always pass `--previous-dir`) it also refuses unless the chain still holds the
  previous checkpoint's head hash at its seq, so a rewrite stops the series where it happened;
- `audit verify --checkpoint FILE ... --public-key FILE` compares kept checkpoints with the
  chain and names the seq and both hashes of each one the chain no longer holds.

Heavy imports stay inside the handlers: `verify-bundle` shares `checkpoint_flags` and must load
neither SQLAlchemy nor MLflow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import InvalidInput

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from app.export.checkpoints import Checkpoint, CheckpointCheck
    from app.facade import GovernanceFacade

AUDIT_HELP = "audit log: verify, export, sign checkpoints"
RESEALED = "chain_resealed"


def register(registry: Any) -> None:
    group = registry.group("audit", AUDIT_HELP)
    p = group.add_parser(
        "checkpoint",
        help="verify the whole chain, then sign its head (refuses a broken or rewritten chain)",
    )
    p.add_argument("--out", type=Path, help="also write the signed checkpoint to this file")
    p.add_argument(
        "--out-dir",
        type=Path,
        metavar="DIR",
        help="also write it into DIR as checkpoint-<seq>-<UTC time>.json",
    )
    p.add_argument(
        "--previous",
        type=Path,
        metavar="FILE",
        help="the previous checkpoint: refuse unless the chain still holds its head at its seq",
    )
    p.add_argument(
        "--previous-dir",
        type=Path,
        metavar="DIR",
        help="use the newest checkpoint in DIR as --previous (an empty DIR: the first one)",
    )
    p.add_argument(
        "--previous-public-key",
        type=Path,
        metavar="FILE",
        help="PEM key the previous checkpoint was signed with (default: the signing key's own; "
        "the old key once, after a key rotation)",
    )
    p.set_defaults(func=cmd_checkpoint)


def checkpoint_flags(parser: argparse.ArgumentParser) -> None:
    """`--checkpoint FILE` (repeatable) and `--checkpoints DIR`, for verify and verify-bundle."""
    parser.add_argument(
        "--checkpoint",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a signed checkpoint kept from earlier (repeatable)",
    )
    parser.add_argument(
        "--checkpoints", type=Path, metavar="DIR", help="every checkpoint file (*.json) in DIR"
    )


def public_keys(paths: list[Path] | None) -> list[Ed25519PublicKey]:
    from app.export.signing import load_public_key

    return [load_public_key(p) for p in dict.fromkeys(paths or ())]


def kept_checkpoints(args: argparse.Namespace) -> list[Checkpoint]:
    from app.export.checkpoints import load_checkpoints

    return load_checkpoints(args.checkpoint, args.checkpoints)


def _previous(args: argparse.Namespace) -> Checkpoint | None:
    from app.export.checkpoints import checkpoint_files, newest, read_checkpoint

    if args.previous and args.previous_dir:
        raise InvalidInput("give --previous FILE or --previous-dir DIR, not both")
    if args.previous:
        return read_checkpoint(args.previous)
    if args.previous_dir is None:
        return None
    found = newest(read_checkpoint(p) for p in checkpoint_files(args.previous_dir))
    if found is None:
        print(f"no checkpoint in {args.previous_dir} yet: signing the first", file=sys.stderr)
    return found


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from app.bootstrap import build_governance
    from app.export.bundle import chain_origin
    from app.export.checkpoints import compare, signature_problem
    from app.export.model import utc_now
    from app.export.signing import load_private_key, load_public_key, signed_checkpoint
    from app.export.store_source import facade_source
    from app.settings import Settings
    from governance.audit import format_ts

    settings = Settings.from_env()
    key = load_private_key(settings.signing_key_path)  # fail before touching anything else
    if args.out_dir is not None and not args.out_dir.is_dir():
        raise InvalidInput(f"{args.out_dir} is not a folder")
    previous = _previous(args)
    verifying = (
        load_public_key(args.previous_public_key) if args.previous_public_key else key.public_key()
    )
    if previous is not None and (problem := signature_problem(previous, [verifying])):
        raise InvalidInput(f"previous checkpoint {previous.path}: {problem}; nothing signed")
    facade = build_governance(settings)
    try:
        verified = facade.store.verify()
        if not verified.ok:
            raise InvalidInput(
                f"the audit chain does not verify (first broken seq {verified.first_broken_seq}:"
                f" {verified.reason}); nothing signed"
            )
        seq = verified.last_seq or 0
        if seq == 0:
            raise InvalidInput("the audit log is empty; there is no head to sign")
        origin = chain_origin(facade_source(facade))
        if previous is not None:
            held = facade.store.entry_hashes([previous.last_seq])
            check = compare(previous, held, keys=[verifying], last_seq=seq, origin=origin)
            if check.failed:
                raise InvalidInput(f"{_with_reseal(facade, [check])[0].line()}; nothing signed")
    finally:
        facade.dispose()
    link = None
    if previous is not None:
        link = {"last_seq": previous.last_seq, "head_hash": previous.head_hash}
    signed_at = format_ts(utc_now())
    body, signature = signed_checkpoint(
        key,
        origin=origin,
        last_seq=seq,
        head_hash=verified.head_hash,
        signed_at=signed_at,
        previous=link,
    )
    text = json.dumps({"checkpoint": json.loads(body), "signature": signature}, sort_keys=True)
    if args.out:
        _write(Path(args.out), text)
    if args.out_dir:
        stamp = signed_at.replace("-", "").replace(":", "").replace(".", "")
        _write(args.out_dir / f"checkpoint-{seq:012d}-{stamp}.json", text)
    print(text)
    return 0


def _write(path: Path, text: str) -> None:
    """Write the whole file or nothing (a reader of the folder never sees half a checkpoint)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text + "\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from exc


def verify_with_checkpoints(args: argparse.Namespace) -> int:
    """`audit verify` with `--checkpoint`/`--checkpoints`: the chain, then every checkpoint."""
    from app.commands._cli_support import OPERATOR, open_facade
    from app.export.bundle import chain_origin
    from app.export.checkpoints import compare
    from app.export.store_source import facade_source

    keys = public_keys(args.public_key)
    checkpoints = kept_checkpoints(args)
    if not checkpoints:
        raise InvalidInput(
            "--public-key checks checkpoints: add --checkpoint FILE or --checkpoints"
        )
    if not keys:
        raise InvalidInput("checkpoints need --public-key FILE (the key that signed them)")
    facade = open_facade()
    try:
        result = facade.verify_audit(OPERATOR)
        source = facade_source(facade)
        last_seq, _ = source.chain_head()
        origin = chain_origin(source)
        held = facade.store.entry_hashes(c.last_seq for c in checkpoints)
        checks = [
            compare(c, held, keys=keys, last_seq=last_seq, origin=origin) for c in checkpoints
        ]
        checks = _with_reseal(facade, checks)
    finally:
        facade.dispose()
    failed = [c for c in checks if c.failed]
    if args.json:
        print(
            json.dumps(
                {
                    "ok": result.ok and not failed,
                    "chain": result.as_dict(),
                    "checkpoints": [c.as_dict() for c in checks],
                },
                sort_keys=True,
            )
        )
        return 0 if result.ok and not failed else 1
    if result.ok:
        print(f"audit chain verified: {result.count} entries, head {result.head_hash}")
    else:
        print(
            f"audit chain broken at seq {result.first_broken_seq}: {result.reason}",
            file=sys.stderr,
        )
    for check in checks:
        print(check.line(), file=sys.stderr if check.failed else sys.stdout)
    if failed:
        print(
            f"{len(failed)} of {len(checks)} checkpoint(s) do not match the chain: it was "
            f"rewritten or restored after they were signed{_window(checks)}",
            file=sys.stderr,
        )
    else:
        print(f"{len(checks)} checkpoint(s): the chain holds every signed head")
    return 0 if result.ok and not failed else 1


def _window(checks: list[CheckpointCheck]) -> str:
    """Where the first changed entry must lie: after the last seq still held, at or before the
    first seq no longer held (each entry hash commits to everything before it)."""
    from app.export.checkpoints import MATCH, MISMATCH, MISSING

    lost = [c.checkpoint.last_seq for c in checks if c.status in (MISMATCH, MISSING)]
    if not lost:
        return ""
    first_lost = min(lost)
    held = [c.checkpoint.last_seq for c in checks if c.status == MATCH]
    last_held = max((s for s in held if s < first_lost), default=0)
    return f"; the first rewritten entry lies in seq {last_held + 1}-{first_lost}"


def _with_reseal(facade: GovernanceFacade, checks: list[CheckpointCheck]) -> list[CheckpointCheck]:
    """Say so when a `chain_resealed` entry records a checkpoint's seq as lost in a restore.

    The check still fails: the chain no longer holds what was signed. The entry (with its actor,
    time and reason) tells a restore apart from a silent rewrite; an insider could write one
    too, but not without it showing in the log and every export.
    """
    if not any(c.failed for c in checks):
        return checks
    with facade.store.unit_of_work(read_only=True) as uow:
        reseals = uow.audit.search(actions=(RESEALED,), limit=None)
    out = []
    for check in checks:
        seq = check.checkpoint.last_seq
        for rec in reseals if check.failed else ():
            payload = json.loads(rec.payload)
            lo, hi = payload.get("lost_from_seq"), payload.get("lost_to_seq")
            if isinstance(lo, int) and isinstance(hi, int) and lo <= seq <= hi:
                check = replace(
                    check,
                    detail=f"{check.detail}; a chain_resealed entry (seq {rec.seq}, {rec.ts}) "
                    f"records seq {lo}-{hi} as lost in a restore: {payload.get('reason', '')}",
                )
                break
        out.append(check)
    return out
