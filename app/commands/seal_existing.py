"""`audit seal-existing` and `audit seal-keygen`: sealed records for an upgraded database.

`python -m app.cli audit seal-existing --checkpoint FILE --public-key FILE` seals, once, the
entries and rows written before sealed records existed (see governance.seal_existing). The
signed checkpoint vouches for them: the chain must still hold its head, and it must cover every
unsealed entry. Without a checkpoint that covers them, the operator must say
`--accept-unvouched`: the entries after the checkpoint (or all of them) are then sealed on the
operator's word, and the range is written into the record with a warning.

`python -m app.cli audit seal-keygen --out FILE` writes a new seal key (mode 0600) for a
production Secret.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import InvalidInput

if TYPE_CHECKING:
    from app.export.checkpoints import Checkpoint
    from governance.seal_existing import LegacyChain
    from governance.unit_of_work import SqlStore

AUDIT_HELP = "audit log: verify, export, sign checkpoints"


def register(registry: Any) -> None:
    group = registry.group("audit", AUDIT_HELP)
    p = group.add_parser(
        "seal-existing",
        help="seal, once, the entries and rows written before sealed records (vouched for by "
        "a signed checkpoint)",
    )
    p.add_argument("--checkpoint", type=Path, metavar="FILE", help="the newest signed checkpoint")
    p.add_argument(
        "--public-key", type=Path, metavar="FILE", help="PEM key that signed the checkpoint"
    )
    p.add_argument(
        "--accept-unvouched",
        action="store_true",
        help="also seal unsealed entries no checkpoint covers (recorded with a warning)",
    )
    p.add_argument("--json", action="store_true", help="print the sealed entry as JSON")
    p.set_defaults(func=cmd_seal_existing)
    k = group.add_parser("seal-keygen", help="write a new audit seal key (mode 0600)")
    k.add_argument("--out", type=Path, required=True, metavar="FILE")
    k.set_defaults(func=cmd_seal_keygen)


def cmd_seal_keygen(args: argparse.Namespace) -> int:
    from app.seal_keys import write_new_key

    if args.out.exists():
        raise InvalidInput(f"{args.out} exists: a seal key is never overwritten")
    try:
        key = write_new_key(args.out)
    except OSError as exc:
        raise InvalidInput(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    print(f"wrote {args.out} (mode 0600); seal key id {key.key_id}")
    return 0


def _checkpoint(args: argparse.Namespace) -> Checkpoint | None:
    from app.export.checkpoints import read_checkpoint, signature_problem
    from app.export.signing import load_public_key

    if args.checkpoint is None:
        if args.public_key:
            raise InvalidInput("--public-key checks a --checkpoint; give both")
        return None
    if args.public_key is None:
        raise InvalidInput("--checkpoint needs --public-key FILE (the key that signed it)")
    checkpoint = read_checkpoint(args.checkpoint)
    problem = signature_problem(checkpoint, [load_public_key(args.public_key)])
    if problem:
        raise InvalidInput(f"checkpoint {args.checkpoint}: {problem}; nothing sealed")
    return checkpoint


def _vouching(
    store: SqlStore, chain: LegacyChain, checkpoint: Checkpoint | None, accept: bool
) -> tuple[dict[str, Any], str]:
    """What vouches for the unsealed entries, and a warning when something does not."""
    covered = chain.already_vouched
    record: dict[str, Any] = {"checkpoint": None}
    if checkpoint is not None:
        held = store.entry_hashes([checkpoint.last_seq]).get(checkpoint.last_seq)
        if held != checkpoint.head_hash:
            found = f"holds {held}" if held else f"ends at seq {chain.head_seq}"
            raise InvalidInput(
                f"the chain does not hold the checkpoint's head at seq {checkpoint.last_seq} "
                f"(signed {checkpoint.head_hash}, the chain {found}): it was rewritten or "
                "restored since; nothing sealed"
            )
        covered = max(covered, checkpoint.last_seq)
        record["checkpoint"] = {
            "last_seq": checkpoint.last_seq,
            "head_hash": checkpoint.head_hash,
            "signed_at": checkpoint.signed_at,
            "key_id": checkpoint.key_id,
            "signature_verified": True,
        }
    lo, hi = covered + 1, chain.through_seq
    record["unvouched_from_seq"], record["unvouched_to_seq"] = (lo, hi) if lo <= hi else (None,) * 2
    if lo > hi:
        return record, ""
    what = f"entries {lo}-{hi} are not covered by " + (
        "the checkpoint" if checkpoint is not None else "any signed checkpoint"
    )
    if not accept:
        raise InvalidInput(
            f"{what}: give the newest checkpoint signed before the upgrade (--checkpoint, "
            "--public-key), or --accept-unvouched to seal them on your word; nothing sealed"
        )
    return record, (
        f"warning: {what}; they were sealed on the operator's word (--accept-unvouched), and "
        "the record says so"
    )


def cmd_seal_existing(args: argparse.Namespace) -> int:
    from app.bootstrap import build_store
    from app.settings import Settings
    from governance.domain import CLI_OPERATOR
    from governance.seal_existing import inspect_chain, seal_existing

    checkpoint = _checkpoint(args)
    store = build_store(Settings.from_env())
    try:
        store.check_schema()
        chain = inspect_chain(store)
        vouching, warning = _vouching(store, chain, checkpoint, args.accept_unvouched)
        report = seal_existing(
            store, chain, actor=CLI_OPERATOR, at=datetime.now(UTC), vouching=vouching
        )
    finally:
        store.dispose()
    if warning:
        print(warning, file=sys.stderr)
    for line in report.unmatched:
        print(f"left unsealed (does not count): {line}", file=sys.stderr)
    record = report.record
    assert record is not None
    if args.json:
        print(json.dumps({**record.as_dict(), "payload": json.loads(record.payload)}))
        return 0
    rows = ", ".join(f"{n} {name}" for name, n in report.sealed.items())
    entries = f"entries 1-{chain.through_seq}" if chain.through_seq else "no entries"
    print(
        f"sealed {entries} and {rows}; recorded as seq {record.seq} (audit_sealed_existing). "
        "Sign a checkpoint now: audit checkpoint"
    )
    return 0
