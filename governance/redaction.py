"""Passwords out of text: database and tracking URIs, and `password=` settings. Standard library.

Used wherever text may echo a configured URI (error messages, log records). It errs on the side
of hiding too much: everything between `scheme://user:` and the last `@` of the same word goes,
so a password holding an unencoded `@` or `/` does not leak its tail.
"""

from __future__ import annotations

import re
from typing import Final

MASK: Final = "***"
# scheme://user:PASSWORD@host  (the user part may be empty; the password runs to the last `@`
# of the word, so `u:p@ss@host` loses `p@ss`).
_URI_PASSWORD: Final = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*):[^\s]*@")
# password=..., passwd=..., pwd=... in query strings and libpq-style connection strings.
_KEY_PASSWORD: Final = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?P<q>['\"]?)[^\s&;'\"]+(?P=q)", re.IGNORECASE
)


def redact_secrets(text: str) -> str:
    """`text` with every URI password and `password=` value replaced by `***`."""
    if "@" not in text and "=" not in text:
        return text  # the common case costs one scan
    text = _URI_PASSWORD.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    return _KEY_PASSWORD.sub(lambda m: f"{m.group('head')}{m.group('q')}{MASK}{m.group('q')}", text)
