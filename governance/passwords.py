"""Argon2id password hashing (argon2-cffi): the production PasswordHasher."""

from __future__ import annotations

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Argon2PasswordHasher:
    """Implements governance.ports.PasswordHasher with argon2-cffi's recommended parameters.

    Args:
        time_cost, memory_cost, parallelism: Argon2id cost parameters; tests may lower them.
    """

    def __init__(
        self, *, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4
    ) -> None:
        self._hasher = _Argon2(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )

    def hash(self, password: str) -> str:
        """A salted argon2id hash in the standard PHC string form."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """True when the password matches; False for a mismatch or a malformed hash."""
        try:
            return bool(self._hasher.verify(password_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with weaker parameters than the current ones."""
        try:
            return bool(self._hasher.check_needs_rehash(password_hash))
        except (InvalidHashError, ValueError):
            return False
