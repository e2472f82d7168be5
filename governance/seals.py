"""Sealed records: HMAC-SHA256 with a key the governance database never sees. Standard library only.

Anybody with SQL access can append a well-formed audit entry (the chain hashes are public
arithmetic) or insert a vote row. What they cannot compute is an HMAC under the seal key, which
lives in a file mounted into the app replicas and the jobs only. So every audit entry and every
row that decides an outcome carries a seal:

    entry seal = HMAC-SHA256(key, ENTRY_TAG || entry_hash)
    row seal   = HMAC-SHA256(key, ROW_TAG || table || 0x00 || canonical JSON of the row's content)

stored as text `s1:<key id>:<hex MAC>`: `s1` names the algorithm and tags above, the key id names
the key (the first 16 hex digits of a SHA-256 over it), so a server holding the current key and
its predecessors verifies seals made before a rotation. An entry's seal is not part of its hash:
exports and the offline verifier are unchanged, and a signed checkpoint attests that every entry
up to its seq was sealed when it was signed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from governance.audit import canonical_json

SEAL_VERSION = "s1"
ENTRY_TAG = b"countersign.seal.entry.v1\x00"
ROW_TAG = b"countersign.seal.row.v1\x00"
KEY_ID_TAG = b"countersign.seal.key-id.v1\x00"
MIN_KEY_BYTES = 32
NOT_SEALED = "not sealed"


@dataclass(frozen=True)
class SealKey:
    """One seal key: its secret bytes (kept out of repr) and its public id."""

    secret: bytes = field(repr=False)
    key_id: str = ""

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise ValueError(f"a seal key needs at least {MIN_KEY_BYTES} bytes")
        if not self.key_id:
            digest = hashlib.sha256(KEY_ID_TAG + self.secret).hexdigest()[:16]
            object.__setattr__(self, "key_id", digest)


class Sealer:
    """Makes seals with the current key and checks them with it or any earlier key."""

    def __init__(self, current: SealKey, previous: Iterable[SealKey] = ()) -> None:
        self.current = current
        self._previous = tuple(previous)
        self._keys = {key.key_id: key.secret for key in (*self._previous, current)}
        self._prefix = f"{SEAL_VERSION}:{current.key_id}:"
        self._inner, self._outer = _entry_pads(current.secret)

    def _entry_mac(self, entry_hash: str) -> str:
        # RFC 2104 with the padded key's hash states computed once: an entry seal costs two
        # SHA-256 blocks instead of four (it is on every append and every verified entry).
        inner = self._inner.copy()
        inner.update(entry_hash.encode("ascii"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return str(outer.hexdigest())

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the keys (hash states do not pickle): the parallel verification hands
        # the sealer to its worker processes.
        return (Sealer, (self.current, self._previous))

    def __repr__(self) -> str:
        return f"Sealer(key_id={self.current.key_id!r}, keys={len(self._keys)})"

    @property
    def key_id(self) -> str:
        return self.current.key_id

    def entry(self, entry_hash: str) -> str:
        """The seal of one audit entry (over its entry hash, which commits to all before it)."""
        return self._prefix + self._entry_mac(entry_hash)

    def entry_checker(self) -> Callable[[str, str | None], str]:
        """`check_entry` for a scan over many entries: the common case (a seal by the current
        key that matches) costs one HMAC and one string comparison; anything else is handed
        to `check_entry` for its reason. Verification compares stored values, so there is no
        secret to leak through timing here."""
        prefix, mac, check = self._prefix, self._entry_mac, self.check_entry

        def checked(entry_hash: str, seal: str | None) -> str:
            if seal == prefix + mac(entry_hash):
                return ""
            return check(entry_hash, seal)

        return checked

    def row(self, table: str, content: Mapping[str, Any]) -> str:
        """The seal of one row's content (see `row_message`)."""
        mac = hmac.digest(self.current.secret, row_message(table, content), "sha256")
        return self._prefix + mac.hex()

    def check_entry(self, entry_hash: str, seal: str | None) -> str:
        """ "" when `seal` is a valid seal of the entry hash, else what is wrong with it."""
        return self._check(ENTRY_TAG + entry_hash.encode("ascii"), seal)

    def check_row(self, table: str, content: Mapping[str, Any], seal: str | None) -> str:
        """ "" when `seal` is a valid seal of the row's content, else what is wrong with it."""
        if not seal:
            return NOT_SEALED
        return self._check(row_message(table, content), seal)

    def _check(self, message: bytes, seal: str | None) -> str:
        if not seal:
            return NOT_SEALED
        version, _, rest = seal.partition(":")
        key_id, _, mac = rest.partition(":")
        if version != SEAL_VERSION:
            return f"unknown seal algorithm {version[:16]!r}"
        secret = self._keys.get(key_id)
        if secret is None:
            return f"sealed with a key this server does not hold (key id {key_id[:16]!r})"
        expected = hmac.digest(secret, message, "sha256").hex()
        if not hmac.compare_digest(expected, mac):
            return "the seal does not match"
        return ""


def _entry_pads(secret: bytes) -> tuple[Any, Any]:
    """SHA-256 states after HMAC's inner pad (and ENTRY_TAG) and after its outer pad."""
    key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(ENTRY_TAG)
    return inner, hashlib.sha256(bytes(b ^ 0x5C for b in key))


def row_message(table: str, content: Mapping[str, Any]) -> bytes:
    """The bytes a row seal covers: the table name and the canonical JSON of the content."""
    return ROW_TAG + table.encode("ascii") + b"\x00" + canonical_json(content).encode("utf-8")


def parse_key_text(text: str) -> SealKey:
    """A seal key from its file text: hexadecimal, at least 32 bytes (64 hex digits).

    Raises:
        ValueError: Not hexadecimal, or too short.
    """
    raw = "".join(text.split())
    try:
        secret = bytes.fromhex(raw)
    except ValueError as exc:
        raise ValueError("a seal key file holds hexadecimal digits only") from exc
    return SealKey(secret)
