"""Spreadsheet-safe text cells for events.csv (CSV or formula injection, OWASP).

Auditors open events.csv in Excel or LibreOffice, which run a cell that starts with =, +, -, @,
TAB or CR as a formula. Much of the log is typed by people (a user name tried at sign-in, a model
name), so every text cell that starts with one of these is written with one `'` in front, which
spreadsheets show as text. A cell that already starts with `'` gets one too, so that the rule
reverses without ambiguity: to read the value, remove exactly one leading `'`.

The numeric columns we write ourselves (seq, in_scope) are left as they are. events.jsonl keeps
every value unchanged; the offline verifier compares each CSV cell with `neutralise(value)`, so
a cell that lost its guard (a formula again) differs from events.jsonl and is caught.
"""

from __future__ import annotations

QUOTE = "'"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
GUARDED_STARTS = (*FORMULA_STARTS, QUOTE)
# The audit record's columns that are not text; every other column of events.csv is.
NUMERIC_COLUMNS = ("seq", "in_scope")
RULE = (
    "Every column except seq and in_scope is text. A text cell that starts with =, +, -, @, "
    "TAB, CR or ' is written with one ' in front, so that a spreadsheet shows it as text "
    "instead of running it as a formula; to read the value, remove exactly one leading ' "
    "from a cell that starts with '. events.jsonl holds the values unchanged."
)


def neutralise(text: str) -> str:
    """The cell for a text value: one `'` in front when it starts with a guarded character."""
    return QUOTE + text if text.startswith(GUARDED_STARTS) else text


def restore(cell: str) -> str:
    """The value of a text cell: exactly one leading `'` removed, if there is one."""
    return cell[1:] if cell.startswith(QUOTE) else cell
