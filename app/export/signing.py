"""Ed25519 keys and signatures for checkpoints and manifests.

The private key lives in a file outside the governance database (COUNTERSIGN_SIGNING_KEY): a
database owner who rewrites the chain cannot forge the signed checkpoints that exports carry.
Keys are PEM (PKCS#8 private, SubjectPublicKeyInfo public); signatures are base64 text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.errors import UserFacingError
from governance.audit import canonical_json

SIGNATURE_ALG = "ed25519"


class SigningKeyError(UserFacingError):
    """A signing or verification key is missing, unreadable or of the wrong kind."""


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of SHA-256(raw key)."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def public_key_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw_public(key)).decode("ascii")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: never overwrite a key by accident; the mode is set at creation, so the private key
    # is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)  # the umask may have narrowed or widened nothing else


def generate_keypair(private_path: Path, public_path: Path) -> str:
    """Create a new Ed25519 key pair: private key mode 0600, public key mode 0644.

    Returns:
        The key id of the new public key.

    Raises:
        SigningKeyError: A target file exists already or cannot be written.
    """
    for path in (private_path, public_path):
        if path.exists():
            raise SigningKeyError(f"{path} exists already; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        _write_new(private_path, private_pem, 0o600)
        _write_new(public_path, public_pem, 0o644)
    except OSError as exc:
        raise SigningKeyError(f"cannot write key file: {exc.strerror} ({exc.filename})") from exc
    return key_id(key.public_key())


def _read(path: Path | None, what: str) -> bytes:
    if path is None:
        raise SigningKeyError(
            f"no {what} configured: set COUNTERSIGN_SIGNING_KEY to the private key file "
            "(create one with `python -m app.cli audit keygen`)"
        )
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise SigningKeyError(f"{what} {path} does not exist") from exc
    except OSError as exc:
        raise SigningKeyError(f"{what} {path} cannot be read: {exc.strerror}") from exc


def load_private_key(path: Path | None) -> Ed25519PrivateKey:
    """Load the Ed25519 signing key from a PEM file.

    Raises:
        SigningKeyError: No path, a missing or unreadable file, or not an Ed25519 private key.
    """
    data = _read(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"signing key {path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"signing key {path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Load an Ed25519 public key from a PEM file.

    Raises:
        SigningKeyError: A missing or unreadable file, or not an Ed25519 public key.
    """
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"public key {path} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"public key {path} is not an Ed25519 key")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    """Sign bytes; the signature as base64 text."""
    return base64.b64encode(key.sign(data)).decode("ascii")


def signature_valid(key: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    """True when `signature_b64` is a valid signature of `data` by `key`."""
    try:
        key.verify(base64.b64decode(signature_b64.strip(), validate=True), data)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def checkpoint_body(
    *,
    origin: str,
    last_seq: int,
    head_hash: str,
    signed_at: str,
    signer: Ed25519PublicKey,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint statement: this chain (origin) had `head_hash` at `last_seq`.

    `previous` (seq and head of the checkpoint before, which the chain was checked against
    before signing) links the checkpoints into a series whose each member vouches for the last.
    """
    body = {
        "format": "countersign-checkpoint/1",
        "origin": origin,
        "last_seq": last_seq,
        "head_hash": head_hash,
        "signed_at": signed_at,
        "alg": SIGNATURE_ALG,
        "key_id": key_id(signer),
    }
    if previous is not None:
        body["previous"] = dict(previous)
    return body


def signed_checkpoint(
    key: Ed25519PrivateKey,
    *,
    origin: str,
    last_seq: int,
    head_hash: str,
    signed_at: str,
    previous: Mapping[str, Any] | None = None,
) -> tuple[bytes, str]:
    """The canonical checkpoint bytes and their signature (base64)."""
    body = checkpoint_body(
        origin=origin,
        last_seq=last_seq,
        head_hash=head_hash,
        signed_at=signed_at,
        signer=key.public_key(),
        previous=previous,
    )
    data = canonical_json(body).encode("utf-8")
    return data, sign(key, data)
