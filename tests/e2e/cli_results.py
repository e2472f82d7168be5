"""Reading a command's (exit code, stdout, stderr): it succeeded, or it refused in one line."""

from __future__ import annotations


def ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def refused(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()
