"""Signed checkpoints kept outside the database, and their comparison with a chain.

A checkpoint (written by `audit checkpoint`) is the statement "the chain `origin` had
`head_hash` at `last_seq`", signed with the Ed25519 key the database never sees. Every entry hash
commits to the whole history before it, so a chain that still holds `head_hash` at `last_seq`
holds exactly the history the checkpoint vouched for; a chain rewritten anywhere at or before
that seq holds another hash there, however consistently its hashes were recomputed.

This module reads checkpoint files, checks their signatures and compares them with the hashes
a chain holds (the database's, or a bundle's events.jsonl). It needs neither the database nor
MLflow: the offline verifier uses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.errors import UserFacingError
from app.export.signing import key_id, signature_valid
from governance.audit import canonical_json

CHECKPOINT_FORMAT = "countersign-checkpoint/1"
MAX_CHECKPOINT_BYTES = 64 << 10  # a checkpoint is a few hundred bytes; never read a giant
HASH_LENGTH = 64

MATCH = "match"
MISMATCH = "mismatch"
MISSING = "missing"  # the chain ends before the checkpoint's seq
NOT_COVERED = "not covered"  # a bundle's slice does not reach the checkpoint's seq
BAD_SIGNATURE = "bad signature"


class CheckpointError(UserFacingError):
    """A checkpoint file or folder that cannot be used (unreadable, not a checkpoint, empty)."""


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint file."""

    path: str
    body: Mapping[str, Any]
    signature: str

    @property
    def last_seq(self) -> int:
        return int(self.body["last_seq"])

    @property
    def head_hash(self) -> str:
        return str(self.body["head_hash"])

    @property
    def origin(self) -> str:
        return str(self.body.get("origin", ""))

    @property
    def key_id(self) -> str:
        return str(self.body.get("key_id", ""))

    @property
    def signed_at(self) -> str:
        return str(self.body.get("signed_at", ""))

    @property
    def name(self) -> str:
        return Path(self.path).name

    def signed_bytes(self) -> bytes:
        # `audit checkpoint` signs the canonical JSON of the body; re-serialising the parsed body
        # canonically gives the same bytes (its values are integers and strings).
        return canonical_json(dict(self.body)).encode("utf-8")


def parse_checkpoint(data: bytes, where: str) -> Checkpoint:
    """A checkpoint from the bytes of a file written by `audit checkpoint`.

    Raises:
        CheckpointError: The bytes are not such a checkpoint.
    """
    problem = f"{where} is not a checkpoint written by `audit checkpoint`"
    try:
        document = json.loads(data)
        body, signature = document["checkpoint"], document["signature"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # [[[[...: too deep
        raise CheckpointError(problem) from exc
    if not isinstance(body, dict) or not isinstance(signature, str):
        raise CheckpointError(problem)
    seq, head = body.get("last_seq"), body.get("head_hash")
    if body.get("format") != CHECKPOINT_FORMAT or not isinstance(seq, int) or seq < 1:
        raise CheckpointError(problem)
    if not isinstance(head, str) or len(head) != HASH_LENGTH:
        raise CheckpointError(problem)
    return Checkpoint(path=where, body=body, signature=signature)


def read_checkpoint(path: Path) -> Checkpoint:
    """Read one checkpoint file (at most MAX_CHECKPOINT_BYTES).

    Raises:
        CheckpointError: The file is missing, unreadable, too large or not a checkpoint.
    """
    try:
        with Path(path).open("rb") as fh:
            data = fh.read(MAX_CHECKPOINT_BYTES + 1)
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint {path} does not exist") from exc
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path} is too large to be a checkpoint")
    return parse_checkpoint(data, str(path))


def checkpoint_files(folder: Path) -> list[Path]:
    """Every `*.json` file directly in `folder`, by name; each must be a checkpoint.

    Raises:
        CheckpointError: The folder does not exist or cannot be listed.
    """
    try:
        return sorted(p for p in Path(folder).iterdir() if p.suffix == ".json" and p.is_file())
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint folder {folder} does not exist") from exc
    except NotADirectoryError as exc:
        raise CheckpointError(f"{folder} is not a folder") from exc
    except OSError as exc:
        raise CheckpointError(f"cannot list {folder}: {exc.strerror or exc}") from exc


def load_checkpoints(files: Sequence[Path], folder: Path | None) -> list[Checkpoint]:
    """The checkpoints named by `--checkpoint FILE ...` and `--checkpoints DIR`, in that order.

    Raises:
        CheckpointError: A file is not a checkpoint, or the folder holds none.
    """
    paths = list(files)
    if folder is not None:
        found = checkpoint_files(folder)
        if not found:
            raise CheckpointError(f"{folder} holds no checkpoint files (*.json)")
        paths.extend(found)
    return [read_checkpoint(p) for p in dict.fromkeys(paths)]


def newest(checkpoints: Iterable[Checkpoint]) -> Checkpoint | None:
    """The checkpoint furthest along the chain (highest seq, then the latest signature)."""
    return max(checkpoints, key=lambda c: (c.last_seq, c.signed_at), default=None)


def signature_problem(cp: Checkpoint, keys: Sequence[Ed25519PublicKey]) -> str:
    """Why the checkpoint's Ed25519 signature does not verify with any of `keys`, or ""."""
    by_id = {key_id(k): k for k in keys}
    key = by_id.get(cp.key_id)
    if key is None:
        known = ", ".join(sorted(by_id))
        return f"signed by key {cp.key_id or '(none named)'}, not by the given key(s) {known}"
    if not signature_valid(key, cp.signed_bytes(), cp.signature):
        return f"its signature does not verify with key {cp.key_id} (the file was altered)"
    return ""


@dataclass(frozen=True)
class CheckpointCheck:
    """How one checkpoint compares with a chain."""

    checkpoint: Checkpoint
    status: str
    held_hash: str = ""
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in (MISMATCH, MISSING, BAD_SIGNATURE)

    def line(self) -> str:
        cp = self.checkpoint
        where = f"checkpoint seq {cp.last_seq} ({cp.name}, signed {cp.signed_at or '?'})"
        if self.status == MATCH:
            return f"{where}: the chain holds its head {cp.head_hash}"
        if self.status == MISMATCH:
            return (
                f"{where}: MISMATCH at seq {cp.last_seq}: the checkpoint signed {cp.head_hash}, "
                f"the chain holds {self.held_hash}{self.detail}"
            )
        return f"{where}: {self.status.upper()}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "file": cp.path,
            "last_seq": cp.last_seq,
            "signed_head_hash": cp.head_hash,
            "held_head_hash": self.held_hash or None,
            "signed_at": cp.signed_at,
            "key_id": cp.key_id,
            "status": self.status,
            "detail": self.detail.strip("; "),
        }


def compare(
    cp: Checkpoint,
    held: Mapping[int, str],
    *,
    keys: Sequence[Ed25519PublicKey],
    last_seq: int,
    first_seq: int = 1,
    bundle: bool = False,
    origin: str = "",
) -> CheckpointCheck:
    """Check the signature, then whether the chain holds the checkpoint's head at its seq.

    Args:
        cp: The checkpoint.
        held: The entry hash the chain holds at the checkpoint's seq, when it holds one.
        keys: The public keys a checkpoint may be signed with (matched by key id).
        last_seq: The last seq of the chain, or of the bundle's slice.
        first_seq: The first seq whose hash `held` can know (a bundle's slice may start later).
        bundle: `held` is a bundle's slice: a seq outside it is "not covered", not missing.
        origin: The chain's origin, to say so when a checkpoint belongs to another chain.
    """
    problem = signature_problem(cp, keys)
    if problem:
        return CheckpointCheck(cp, BAD_SIGNATURE, detail=problem)
    seq = cp.last_seq
    if bundle and not first_seq <= seq <= last_seq:
        side = "older than the bundle" if seq < first_seq else "newer than the bundle"
        return CheckpointCheck(
            cp,
            NOT_COVERED,
            detail=f"seq {seq} is outside the bundle's seq {first_seq}-{last_seq} ({side})",
        )
    if seq > last_seq:
        return CheckpointCheck(
            cp,
            MISSING,
            detail=(
                f"the chain ends at seq {last_seq}, before the checkpoint's seq {seq}: "
                "entries it vouched for are gone"
            ),
        )
    found = held.get(seq, "")
    if found == cp.head_hash:
        return CheckpointCheck(cp, MATCH, held_hash=found)
    detail = ""
    if origin and cp.origin and origin != cp.origin:
        detail = f"; the checkpoint names chain {cp.origin}, this chain is {origin}"
    return CheckpointCheck(cp, MISMATCH, held_hash=found or "(none)", detail=detail)


def bundle_verdict(checks: Sequence[CheckpointCheck], first_seq: int, last_seq: int) -> str:
    """Why a bundle fails its checkpoints, or "": the first failed checkpoint fails it, and so
    does a list none of which lies within the bundle (nothing would have been compared)."""
    for check in checks:
        if check.failed:
            return check.line()
    if checks and all(c.status != MATCH for c in checks):
        seqs = ", ".join(str(c.checkpoint.last_seq) for c in checks)
        return (
            f"none of the checkpoints (seq {seqs}) lies within the bundle's seq "
            f"{first_seq}-{last_seq}: nothing was compared; ask for an export whose period "
            "includes one of them"
        )
    return ""
