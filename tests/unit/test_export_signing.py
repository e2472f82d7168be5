"""Signing keys: created safely, loaded strictly, refused with one clear line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.export.signing import (
    SigningKeyError,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign,
    signature_valid,
)


def test_keygen_writes_a_usable_pair_with_a_private_file_only_the_owner_reads(tmp_path: Path):
    private, public = tmp_path / "signing.pem", tmp_path / "signing.pub"
    kid = generate_keypair(private, public)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert len(kid) == 16
    signature = sign(load_private_key(private), b"head")
    assert signature_valid(load_public_key(public), b"head", signature)
    assert not signature_valid(load_public_key(public), b"other", signature)


def test_keygen_never_overwrites_a_key(tmp_path: Path):
    private, public = tmp_path / "k.pem", tmp_path / "k.pub"
    generate_keypair(private, public)
    before = private.read_bytes()
    with pytest.raises(SigningKeyError, match="exists already"):
        generate_keypair(private, tmp_path / "other.pub")
    assert private.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"not a key", "is not an unencrypted PEM private key"),
    ],
)
def test_a_bad_signing_key_is_one_clear_line(tmp_path: Path, content: bytes | None, message: str):
    path = tmp_path / "key.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SigningKeyError, match=message):
        load_private_key(path)


def test_no_configured_key_names_the_setting():
    with pytest.raises(SigningKeyError, match="COUNTERSIGN_SIGNING_KEY"):
        load_private_key(None)


def test_a_public_key_is_not_accepted_as_a_signing_key(tmp_path: Path):
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    with pytest.raises(SigningKeyError):
        load_private_key(tmp_path / "k.pub")
    with pytest.raises(SigningKeyError, match="is not a PEM public key"):
        load_public_key(tmp_path / "k.pem")
