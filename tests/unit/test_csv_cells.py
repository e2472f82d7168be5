"""The spreadsheet-safe rule for the text cells of events.csv, and that it reverses exactly."""

from __future__ import annotations

import pytest

from app.export.csv_cells import FORMULA_STARTS, neutralise, restore


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1 from me", "'+1 from me"),
        ("-1 looks wrong", "'-1 looks wrong"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("\tindented", "'\tindented"),
        ("\rcarriage", "'\rcarriage"),
        ("'already quoted", "''already quoted"),
        ("''twice", "'''twice"),
        ("alice", "alice"),
        ('{"justification":"=1+1"}', '{"justification":"=1+1"}'),
        ("a=b", "a=b"),
        (" =1", " =1"),
        ("", ""),
        ("2026-11-02T09:00:00.000000Z", "2026-11-02T09:00:00.000000Z"),
    ],
)
def test_a_text_cell_is_guarded_only_when_it_starts_with_a_risky_character(value, cell):
    assert neutralise(value) == cell
    assert restore(cell) == value


@pytest.mark.parametrize("start", [*FORMULA_STARTS, "'"])
def test_no_guarded_cell_starts_with_a_formula_character(start: str):
    for value in (start, start * 3, f"{start}x", f"'{start}x"):
        assert not neutralise(value).startswith(FORMULA_STARTS)
        assert restore(neutralise(value)) == value


def test_restore_strips_exactly_one_quote():
    assert restore("'''x") == "''x"
    assert restore("x'") == "x'"
