"""Reading and checking data sets for a drift comparison: CSV or Parquet, from bytes or disk.

Every problem a user can cause (too large, empty, not UTF-8, not a table, columns that do not
match the reference, a column whose kind differs) becomes one InvalidInput line naming the file
and, where it helps, the column.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from app.errors import InvalidInput
from app.reports.limits import DataLimits, read_csv, read_parquet

PARQUET_MAGIC = b"PAR1"
SUFFIXES = (".csv", ".parquet", ".pq")


def _kind(series: pd.Series) -> str:
    if series.isna().all():
        return "empty"
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "text"


def _limits(limits: DataLimits | int) -> DataLimits:
    return limits if isinstance(limits, DataLimits) else DataLimits(max_mb=limits)


def read_table(data: bytes, filename: str, limits: DataLimits | int) -> pd.DataFrame:
    """Parse an uploaded CSV or Parquet file within the limits, before the frame is built.

    Args:
        data: The file's bytes.
        filename: Its name, for the format and for messages.
        limits: Bounds on the file, its rows, columns and decoded size (a plain number is the
            file limit in MB with the default bounds on the rest).

    Raises:
        LimitExceeded: Larger than a limit (the message names the setting that raises it).
        InvalidInput: Empty, of an unknown format, not UTF-8, or unreadable.
    """
    limits = _limits(limits)
    name = Path(filename).name or "the file"
    limits.check_file(name, len(data))
    if not data.strip():
        raise InvalidInput(f"{name} is empty")
    suffix = Path(filename).suffix.lower()
    if data[:4] == PARQUET_MAGIC or suffix in (".parquet", ".pq"):
        frame = read_parquet(data, name, limits)
    elif suffix == ".csv" or not suffix:
        frame = _read_csv(data, name, limits)
    else:
        raise InvalidInput(f"{name}: only CSV (.csv) and Parquet (.parquet) files are supported")
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise InvalidInput(f"{name} has no data rows")
    return frame


def read_path(path: Path | str, limits: DataLimits | int) -> pd.DataFrame:
    """`read_table` for a file on disk (the CLI and logged artifacts); the file's size is
    checked before it is read."""
    limits = _limits(limits)
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    limits.check_file(path.name, path.stat().st_size)
    return read_table(path.read_bytes(), path.name, limits)


def _read_csv(data: bytes, name: str, limits: DataLimits) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start}); "
            "save it as UTF-8 CSV"
        ) from exc
    if "\x00" in text:
        raise InvalidInput(f"{name} looks binary, not CSV; upload a CSV or Parquet file")
    try:
        return read_csv(text, name, limits)
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput(f"{name} is empty") from exc
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"{name} is not a well-formed CSV file: {first}") from exc


def check_compatible(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    """The current data must have the reference's columns, each of the same kind.

    Raises:
        InvalidInput: Missing or extra columns, or a column numeric in one and text in the other.
    """
    ref_cols = [str(c) for c in reference.columns]
    cur_cols = [str(c) for c in current.columns]
    missing = [c for c in ref_cols if c not in set(cur_cols)]
    extra = [c for c in cur_cols if c not in set(ref_cols)]
    if missing:
        raise InvalidInput(f"the current data lacks columns of the reference: {', '.join(missing)}")
    if extra:
        raise InvalidInput(f"the current data has columns the reference lacks: {', '.join(extra)}")
    for column in ref_cols:
        ref_kind, cur_kind = _kind(reference[column]), _kind(current[column])
        if "empty" in (ref_kind, cur_kind) or ref_kind == cur_kind:
            continue
        raise InvalidInput(
            f"column '{column}' is {ref_kind} in the reference data but {cur_kind} "
            "in the current data"
        )
