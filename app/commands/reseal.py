"""`python -m app.cli audit reseal --reason TEXT [--checkpoint FILE]`: seal a restore in the chain.

A point-in-time restore rewinds the audit chain to the backup's head. The entries after it are
gone, and signed checkpoints or exports taken since then name a head the database no longer
holds. Reseal verifies the restored chain from genesis, compares it with the newest signed
checkpoint kept outside the database (the output of `audit checkpoint`), and appends one
`chain_resealed` entry that states what was restored and which seq range was lost. The chain
then continues from the verified point, and the gap is itself part of the audited record.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.errors import InvalidInput

RESEALED = "chain_resealed"


def register(registry: Any) -> None:
    group = registry.group("audit", "audit log: verify, export, sign checkpoints")
    reseal = group.add_parser(
        "reseal", help="after restoring a backup: verify and record the restore in the chain"
    )
    reseal.add_argument("--reason", required=True, help="why and from which backup (recorded)")
    reseal.add_argument(
        "--checkpoint", type=Path, help="the newest signed checkpoint (JSON from audit checkpoint)"
    )
    reseal.add_argument(
        "--public-key", type=Path, help="PEM public key: the checkpoint's signature must verify"
    )
    reseal.add_argument("--json", action="store_true", help="print the sealed entry as JSON")
    reseal.set_defaults(func=cmd_reseal)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """`last_seq` and `head_hash` of a checkpoint file written by `audit checkpoint`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        body = data["checkpoint"]
        return {
            "body": dict(body),
            "last_seq": int(body["last_seq"]),
            "head_hash": str(body["head_hash"]),
            "signed_at": str(body.get("signed_at", "")),
            "signature": str(data.get("signature", "")),
        }
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{path} is not a checkpoint written by `audit checkpoint`") from exc


def signature_checked(checkpoint: dict[str, Any], public_key: Path) -> bool:
    """True when the checkpoint's Ed25519 signature verifies; refuses a forged one."""
    from app.export.signing import load_public_key, signature_valid
    from governance.audit import canonical_json

    key = load_public_key(public_key)
    data = canonical_json(checkpoint["body"]).encode("utf-8")
    if not signature_valid(key, data, checkpoint["signature"]):
        raise InvalidInput("the checkpoint's signature does not verify with this public key")
    return True


def cmd_reseal(args: argparse.Namespace) -> int:
    from app.bootstrap import build_store
    from app.settings import Settings
    from governance.domain import CLI_OPERATOR, ObjectType

    reason = args.reason.strip()
    if not reason:
        raise InvalidInput("--reason must say why and from which backup")
    checkpoint = read_checkpoint(args.checkpoint) if args.checkpoint else None
    if args.public_key and checkpoint is None:
        raise InvalidInput("--public-key checks a --checkpoint; give both")
    signed = (
        signature_checked(checkpoint, args.public_key) if checkpoint and args.public_key else None
    )
    store = build_store(Settings.from_env())
    try:
        store.check_schema()
        verified = store.verify()
        if not verified.ok:
            raise InvalidInput(
                f"the restored chain does not verify (first broken seq {verified.first_broken_seq}:"
                f" {verified.reason}); restore an older backup instead"
            )
        head_seq = verified.last_seq or 0
        if head_seq == 0:
            raise InvalidInput("the audit log is empty: there is nothing to reseal")
        payload: dict[str, Any] = {
            "reason": reason,
            "restored_head_seq": head_seq,
            "restored_head_hash": verified.head_hash,
            "checkpoint": checkpoint,
            "checkpoint_signature_verified": signed,
            "lost_from_seq": None,
            "lost_to_seq": None,
        }
        with store.unit_of_work() as uow:
            if uow.audit.ensure_locked() != (head_seq, verified.head_hash):
                raise InvalidInput(
                    "the chain moved while it was verified: stop the app replicas and the jobs, "
                    "then reseal"
                )
            if checkpoint is not None:
                last = checkpoint["last_seq"]
                if last <= head_seq:
                    held = next(iter(uow.audit.iterate(last)), None)
                    matches = held is not None and held.entry_hash == checkpoint["head_hash"]
                    payload["checkpoint_matches"] = matches
                else:
                    payload["lost_from_seq"], payload["lost_to_seq"] = head_seq + 1, last
            record = uow.audit.append(
                actor=CLI_OPERATOR,
                action=RESEALED,
                object_type=ObjectType.AUDIT,
                object_id="chain",
                payload=payload,
                at=_now(),
            )
            uow.commit()
    finally:
        store.dispose()
    if payload.get("checkpoint_matches") is False:
        print(
            f"warning: the checkpoint names seq {checkpoint and checkpoint['last_seq']} with "
            "another hash than the restored chain: entries were appended after the restore, or "
            "the checkpoint belongs to another chain; recorded as checkpoint_matches=false",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps({**record.as_dict(), "payload": json.loads(record.payload)}))
    else:
        lost = (
            f"; entries {payload['lost_from_seq']}-{payload['lost_to_seq']} were lost"
            if payload["lost_from_seq"]
            else ""
        )
        print(
            f"resealed at seq {record.seq} after the verified head {head_seq}{lost}; "
            "sign a new checkpoint now (audit checkpoint)"
        )
    return 0


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
