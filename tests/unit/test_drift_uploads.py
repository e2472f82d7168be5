"""Upload validation: every bad file becomes one clear InvalidInput line."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from app.errors import InvalidInput
from app.reports.uploads import check_compatible, read_path, read_table


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


def test_a_csv_file_is_read() -> None:
    frame = read_table(b"a,b\n1,x\n2,y\n", "data.csv", 10)
    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].tolist() == [1, 2]


def test_a_parquet_file_is_read_by_content_even_without_the_suffix() -> None:
    data = _parquet(pd.DataFrame({"a": [1.5, 2.5]}))
    assert read_table(data, "upload", 10)["a"].tolist() == [1.5, 2.5]


def test_a_utf8_bom_is_accepted() -> None:
    assert list(read_table("\ufeffa,b\n1,2\n".encode(), "x.csv", 10).columns) == ["a", "b"]


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.csv", "empty.csv is empty"),
        (b"   \n", "blank.csv", "blank.csv is empty"),
        (b"a,b\n", "header.csv", "header.csv has no data rows"),
        ("a,b\n1,ø\n".encode("latin-1"), "latin.csv", "latin.csv is not UTF-8 text"),
        (b"PAR1 this is not parquet", "bad.parquet", "bad.parquet is not a readable Parquet"),
        (b"a,b\n1,2\n", "data.xlsx", r"only CSV \(.csv\) and Parquet"),
        (b'a,b\n1,"2\n', "quote.csv", "quote.csv is not a well-formed CSV"),
    ],
)
def test_a_bad_file_gets_a_clear_message(data: bytes, name: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        read_table(data, name, 10)


def test_a_file_over_the_size_limit_is_refused() -> None:
    data = b"a\n" + b"1\n" * 600_000
    with pytest.raises(InvalidInput, match=r"big.csv is 1.1 MB; the upload limit is 1 MB"):
        read_table(data, "big.csv", 1)


def test_a_missing_path_is_reported(tmp_path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        read_path(tmp_path / "nope.csv", 10)


REFERENCE = pd.DataFrame({"age": [30, 40], "city": ["Oslo", "Lima"], "ok": [True, False]})


@pytest.mark.parametrize(
    ("current", "message"),
    [
        (REFERENCE.drop(columns=["city"]), "lacks columns of the reference: city"),
        (REFERENCE.assign(extra=1), "has columns the reference lacks: extra"),
        (
            REFERENCE.assign(age=["thirty", "forty"]),
            "'age' is numeric in the reference data but text",
        ),
        (REFERENCE.assign(ok=[1.5, 2.5]), "'ok' is boolean in the reference data but numeric"),
    ],
)
def test_current_data_that_does_not_fit_the_reference_is_refused(
    current: pd.DataFrame, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_compatible(REFERENCE, current)


def test_compatible_data_passes_even_with_missing_values() -> None:
    current = REFERENCE.assign(age=[np.nan, 41.0], city=[None, None])
    check_compatible(REFERENCE, current)
