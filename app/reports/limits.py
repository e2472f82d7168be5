"""Size bounds on data sets, checked before a DataFrame is built.

A compressed file says little about what it expands to: an 89 KiB Parquet file of one repeated
value holds 20 million rows. Parquet is checked from its footer (rows, columns, sizes) and then
read with string columns kept dictionary-encoded, so their decoded size is known before they are
expanded; CSV is built from chunks that are counted (rows, decoded bytes) as they arrive.
Each refusal names the limit and the setting that raises it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import pandas as pd

from app.errors import InvalidInput, LimitExceeded

MB = 1024 * 1024
CSV_CHUNK_CELLS = 200_000


@dataclass(frozen=True)
class DataLimits:
    """The bounds on one data set, with the settings that raise each of them."""

    max_mb: int = 200  # the file itself
    max_rows: int = 2_000_000
    max_columns: int = 1_000
    max_decoded_mb: int = 512
    file_setting: str = "COUNTERSIGN_UPLOAD_MAX_MB"

    def check_file(self, name: str, size: int) -> None:
        if size > self.max_mb * MB:
            kind = "upload" if self.file_setting == "COUNTERSIGN_UPLOAD_MAX_MB" else "artifact"
            raise LimitExceeded(
                f"{name} is {size / MB:.1f} MB; the {kind} limit is {self.max_mb} MB "
                f"(raise {self.file_setting} to allow more)"
            )

    def check_rows(self, name: str, rows: int) -> None:
        if rows > self.max_rows:
            raise LimitExceeded(
                f"{name} has {'more than ' if rows == self.max_rows + 1 else ''}{rows:,} rows; "
                f"the limit is {self.max_rows:,} rows (raise COUNTERSIGN_DATA_MAX_ROWS)"
            )

    def check_columns(self, name: str, columns: int) -> None:
        if columns > self.max_columns:
            raise LimitExceeded(
                f"{name} has {columns:,} columns; the limit is {self.max_columns:,} columns "
                "(raise COUNTERSIGN_DATA_MAX_COLUMNS)"
            )

    def check_decoded(self, name: str, size: int) -> None:
        if size > self.max_decoded_mb * MB:
            raise LimitExceeded(
                f"{name} expands to at least {size / MB:,.0f} MB in memory; the limit is "
                f"{self.max_decoded_mb} MB (raise COUNTERSIGN_DATA_MAX_DECODED_MB)"
            )


# ---- Parquet -------------------------------------------------------------------------------


def _footer_estimate(meta: Any) -> int:
    """Decoded bytes the footer admits to: per column chunk, the larger of its uncompressed
    size and its value count times the value width (dictionary and run-length encodings make
    the first tiny for repeated values)."""
    total = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            width = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT96": 12}.get(chunk.physical_type, 8)
            total += max(int(chunk.total_uncompressed_size), int(chunk.num_values) * width)
    return total


def read_parquet(data: bytes, name: str, limits: DataLimits) -> pd.DataFrame:
    """Parse Parquet bytes within the limits, refusing before the frame is built.

    Raises:
        LimitExceeded: Too many rows or columns, or more decoded bytes than allowed.
        InvalidInput: Not a readable Parquet file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        meta = parquet.metadata
        schema = parquet.schema_arrow
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise InvalidInput(f"{name} is not a readable Parquet file ({type(exc).__name__})") from exc
    limits.check_rows(name, int(meta.num_rows))
    limits.check_columns(name, max(int(meta.num_columns), len(schema.names)))
    limits.check_decoded(name, _footer_estimate(meta))
    # Strings inside lists, structs or maps cannot be kept dictionary-encoded while read: one
    # long value repeated on every row would expand unchecked. Drift compares flat columns.
    nested = next((f for f in schema if pa.types.is_nested(f.type)), None)
    if nested is not None:
        raise InvalidInput(
            f"{name}: column {str(nested.name)[:80]!r} is nested ({str(nested.type)[:80]}); "
            "only flat columns can be compared"
        )
    # Strings stay dictionary-encoded while read, so one long value repeated on every row costs
    # its length once; the dense size is then computed before anything is expanded.
    strings = [
        f.name
        for f in schema
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_binary(f.type)
        or pa.types.is_large_binary(f.type)
    ]
    try:
        table = pq.read_table(
            io.BytesIO(data), read_dictionary=strings or None, use_pandas_metadata=True
        )
        limits.check_rows(name, table.num_rows)
        limits.check_decoded(name, _dense_bytes(table))
        return _decoded(table, strings).to_pandas()
    except LimitExceeded:
        raise
    except Exception as exc:
        raise InvalidInput(f"{name} is not a readable Parquet file ({type(exc).__name__})") from exc


def _dense_bytes(table: Any) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    total = 0
    for column in table.columns:
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                lengths = pc.binary_length(chunk.dictionary).fill_null(0)
                used = pc.take(lengths, chunk.indices.fill_null(0))
                total += int(pc.sum(used).as_py() or 0) + 8 * len(chunk)
            else:
                total += int(chunk.nbytes)
    return total


def _decoded(table: Any, strings: list[str]) -> Any:
    if not strings:
        return table
    columns = [
        table[n].cast(table.schema.field(n).type.value_type) if n in strings else table[n]
        for n in table.column_names
    ]
    return type(table).from_arrays(
        columns, names=table.column_names, metadata=table.schema.metadata
    )


# ---- CSV -----------------------------------------------------------------------------------


def read_csv(text: str, name: str, limits: DataLimits) -> pd.DataFrame:
    """Parse CSV text within the limits, refusing as soon as one is passed.

    A first look refuses what is plainly too large (columns in the header; at least eight bytes
    per cell on every line, plus the text), without parsing. The frame is then built from
    chunks of about CSV_CHUNK_CELLS cells: rows and decoded bytes are added up after each
    chunk, so parsing stops within one chunk of a limit. Parsing in one go would hold a Python
    object per text cell at once (about 90 bytes each: a 57 MB file of short strings peaked at
    1.3 GB for a 160 MB frame); chunks bound that to one chunk's worth.

    Raises:
        LimitExceeded: Too many rows or columns, or more memory than allowed.
        pandas' EmptyDataError, ParserError, csv.Error, ValueError: malformed text.
    """
    header = next(csv.reader(io.StringIO(text[: limits.max_columns * 1024 + 1])), [])
    limits.check_columns(name, len(header))
    # pandas ends a row at \n, \r\n and a lone \r alike: count every kind of line end.
    lines = text.count("\n") + text.count("\r") - text.count("\r\n") + 1
    limits.check_decoded(name, min(lines, limits.max_rows + 1) * len(header) * 8 + len(text))
    chunks, rows, decoded = [], 0, 0
    size = max(1, CSV_CHUNK_CELLS // max(1, len(header)))
    with pd.read_csv(io.StringIO(text), chunksize=size) as reader:
        for chunk in reader:
            rows += len(chunk)
            limits.check_rows(name, rows)
            limits.check_columns(name, chunk.shape[1])
            decoded += int(chunk.memory_usage(deep=True, index=False).sum())
            limits.check_decoded(name, decoded)
            chunks.append(chunk)
    if not chunks:  # a header and no rows
        return pd.read_csv(io.StringIO(text), nrows=0)
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
