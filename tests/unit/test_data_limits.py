"""Small files that expand without limit are refused before a frame is built, with one message
naming the limit and the setting that raises it; the report job registry and the report cache
stay bounded."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.errors import InvalidInput, LimitExceeded
from app.reports.cache import DriftCache, enforce_budget
from app.reports.jobs import ReportJobs
from app.reports.limits import DataLimits
from app.reports.uploads import read_path, read_table

KIB = 1024


def _parquet(table: pa.Table, repeat: int = 1) -> bytes:
    buf = io.BytesIO()
    with pq.ParquetWriter(buf, table.schema, compression="zstd") as writer:
        for _ in range(repeat):
            writer.write_table(table)
    return buf.getvalue()


@pytest.fixture
def no_frame_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything starts decoding the data into a table or a frame."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the data was read although a limit was already exceeded")

    monkeypatch.setattr(pq, "read_table", refuse)
    monkeypatch.setattr(pd, "read_parquet", refuse)
    monkeypatch.setattr(pd, "read_csv", refuse)


def test_the_issue_s_89_kib_parquet_of_20_million_rows_is_refused_unread(
    no_frame_built: None,
) -> None:
    # One repeated value compresses to almost nothing: 20 x 1M zeros.
    data = _parquet(pa.table({"v": pa.array(np.zeros(1_000_000))}), repeat=20)
    assert len(data) < 100 * KIB
    with pytest.raises(LimitExceeded) as refused:
        read_table(data, "tiny.parquet", DataLimits())
    message = str(refused.value)
    assert "tiny.parquet has 20,000,000 rows" in message
    assert "the limit is 2,000,000 rows (raise COUNTERSIGN_DATA_MAX_ROWS)" in message


def test_parquet_columns_and_decoded_size_are_checked_from_the_footer(
    no_frame_built: None,
) -> None:
    wide = _parquet(pa.table({f"c{i}": pa.array([0.0] * 10) for i in range(50)}))
    with pytest.raises(LimitExceeded, match=r"50 columns.*COUNTERSIGN_DATA_MAX_COLUMNS"):
        read_table(wide, "wide.parquet", DataLimits(max_columns=10))
    long = _parquet(pa.table({"v": pa.array(np.zeros(100_000))}), repeat=3)  # 2.3 MB decoded
    with pytest.raises(LimitExceeded, match=r"expands to.*COUNTERSIGN_DATA_MAX_DECODED_MB"):
        read_table(long, "long.parquet", DataLimits(max_decoded_mb=1))


def test_a_long_string_repeated_on_every_row_is_refused_before_it_is_expanded() -> None:
    # 2,000 rows that all point at one 1 MB dictionary entry: 2 GB once expanded.
    indices = pa.array(np.zeros(2_000, dtype=np.int32))
    column = pa.DictionaryArray.from_arrays(indices, pa.array(["x" * (1024 * KIB)]))
    data = _parquet(pa.table({"s": column}))
    assert len(data) < 50 * KIB
    with pytest.raises(LimitExceeded, match=r"expands to at least 2,000 MB.*DECODED_MB"):
        read_table(data, "strings.parquet", DataLimits(max_decoded_mb=64))


@pytest.mark.parametrize("kind", ["list", "struct", "map"])
def test_a_long_string_repeated_inside_a_nested_column_is_refused_unread(
    no_frame_built: None, kind: str
) -> None:
    # 2,000 rows that each hold the same 500 KB string inside a list, struct or map: one
    # dictionary entry on disk, 1 GB once read (the footer admits to a few kilobytes).
    rows = 2_000
    strings = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["x" * (500 * KIB)])
    )
    offsets = pa.array(np.arange(rows + 1, dtype=np.int32))
    nested = {
        "list": lambda: pa.ListArray.from_arrays(offsets, strings),
        "struct": lambda: pa.StructArray.from_arrays([strings], names=["s"]),
        "map": lambda: pa.MapArray.from_arrays(offsets, pa.array(["k"] * rows), strings),
    }[kind]()
    buf = io.BytesIO()
    pq.write_table(pa.table({"nested": nested}), buf, store_schema=False)  # read back dense
    with pytest.raises(InvalidInput, match=r"column 'nested' is nested .*only flat columns"):
        read_table(buf.getvalue(), "nested.parquet", DataLimits(max_decoded_mb=64))


def test_parquet_within_the_limits_reads_as_pandas_reads_it() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"], "c": [0.5, np.nan, 1.5]})
    frame["d"] = pd.Categorical(["p", "q", "p"])
    buf = io.BytesIO()
    frame.set_index("a").to_parquet(buf)
    data = buf.getvalue()
    expected = pd.read_parquet(io.BytesIO(data))
    pd.testing.assert_frame_equal(read_table(data, "ok.parquet", DataLimits()), expected)


def test_csv_rows_columns_and_size_are_counted_before_the_frame_is_built(
    no_frame_built: None,
) -> None:
    header = ",".join(f"c{i}" for i in range(2_000)) + "\n"
    with pytest.raises(LimitExceeded, match=r"2,000 columns.*COUNTERSIGN_DATA_MAX_COLUMNS"):
        read_table((header + "1" * 10).encode(), "wide.csv", DataLimits())
    numbers = ("a,b\n" + "1,2\n" * 300_000).encode()  # 1.2 MB of text, 4.8 MB as floats
    with pytest.raises(LimitExceeded, match=r"expands to.*COUNTERSIGN_DATA_MAX_DECODED_MB"):
        read_table(numbers, "numbers.csv", DataLimits(max_decoded_mb=2, max_rows=10**7))


def test_csv_rows_are_counted_in_chunks_and_the_count_stops_at_the_limit() -> None:
    many = ("a,b\n" + "1,x\n" * 250_000).encode()
    with pytest.raises(LimitExceeded, match=r"the limit is 100,000 rows.*DATA_MAX_ROWS"):
        read_table(many, "many.csv", DataLimits(max_rows=100_000))
    # Line breaks inside quotes are not rows: the exact count lets this file in.
    quoted = ("a,b\n" + '1,"two\nlines"\n' * 60).encode()
    assert len(read_table(quoted, "quoted.csv", DataLimits(max_rows=100))) == 60


@pytest.mark.parametrize("line_end", ["\r", "\r\n"])
def test_csv_rows_ended_by_a_lone_carriage_return_count_as_rows(line_end: str) -> None:
    # pandas ends a row at a lone \r too: 5,000 rows with not one \n after the header.
    text = "a,b\n" + f"1,2{line_end}" * 5_000
    with pytest.raises(LimitExceeded, match=r"the limit is 1,000 rows.*DATA_MAX_ROWS"):
        read_table(text.encode(), "mac.csv", DataLimits(max_rows=1_000))


def test_csv_text_cells_are_parsed_in_chunks_not_all_at_once() -> None:
    import random
    import string
    import tracemalloc

    # 2 million short text cells: parsed in one go, pandas holds a Python object for each at
    # once (about six times the finished frame); in chunks, about one chunk's worth.
    rng = random.Random(0)
    cell = ["".join(rng.choices(string.ascii_letters, k=3)) for _ in range(5_000)]
    header = ",".join(f"c{i}" for i in range(10)) + "\n"
    text = header + "".join(",".join(rng.choices(cell, k=10)) + "\n" for _ in range(200_000))
    tracemalloc.start()
    try:
        frame = read_table(text.encode(), "words.csv", DataLimits(max_decoded_mb=64))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frame.shape == (200_000, 10)
    assert peak < 3 * frame.memory_usage(deep=True, index=False).sum()


def test_files_over_the_size_limit_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(
        LimitExceeded, match=r"the upload limit is 1 MB \(raise COUNTERSIGN_UPLOAD_MAX_MB"
    ):
        read_table(b"a\n" + b"1\n" * 600_000, "big.csv", 1)
    path = tmp_path / "logged.csv"
    path.write_bytes(b"a\n" + b"1\n" * 600_000)
    limits = DataLimits(max_mb=1, file_setting="COUNTERSIGN_ARTIFACT_MAX_MB")
    with pytest.raises(LimitExceeded, match="COUNTERSIGN_ARTIFACT_MAX_MB"):
        read_path(path, limits)
    assert issubclass(LimitExceeded, InvalidInput)  # every caller's one-line handling applies


def test_the_report_job_registry_refuses_past_its_bound_and_forgets_old_jobs(
    tmp_path: Path,
) -> None:
    release = threading.Event()

    def slow() -> Path:
        release.wait(timeout=60)
        return tmp_path

    jobs = ReportJobs(workers=1, max_jobs=2)
    jobs.submit("a", slow)
    jobs.submit("b", slow)
    jobs.submit("a", slow)  # joins the job already there
    with pytest.raises(LimitExceeded, match=r"limit is 2 at once.*COUNTERSIGN_REPORT_JOBS_MAX"):
        jobs.submit("c", slow)
    release.set()
    for key in ("a", "b"):
        assert jobs.wait(key, timeout=60).status == "done"
    for i in range(20):
        jobs.submit(f"quick-{i}", lambda: tmp_path)
        jobs.wait(f"quick-{i}", timeout=60)
    assert len(jobs) <= 2


def test_the_report_cache_evicts_the_least_recently_used_entries(tmp_path: Path) -> None:
    cache = DriftCache(tmp_path, max_mb=1)
    page = "x" * (300 * KIB)
    paths = []
    for i in range(3):
        paths.append(cache.put_html(f"{i:02d}" + "k" * 62, page))
        os.utime(paths[-1], (1_000 + i, 1_000 + i))  # an explicit age per entry
    assert cache.html_path("00" + "k" * 62) == paths[0]  # a hit makes entry 0 the newest
    newest = cache.put_html("03" + "k" * 62, page)
    assert newest.is_file()
    assert paths[0].is_file()  # used recently: kept
    assert not paths[1].is_file()  # least recently used: evicted
    total = sum(p.stat().st_size for p in (tmp_path / "drift").rglob("*") if p.is_file())
    assert total <= 1024 * KIB


def test_the_budget_keeps_the_entry_just_written_even_when_it_alone_is_too_large(
    tmp_path: Path,
) -> None:
    (tmp_path / "old.bin").write_bytes(b"0" * 1000)
    big = tmp_path / "new.bin"
    big.write_bytes(b"1" * 5000)
    os.utime(big, (2_000, 2_000))
    os.utime(tmp_path / "old.bin", (1_000, 1_000))
    assert enforce_budget(tmp_path, 100, keep=big) == 1000
    assert big.is_file()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COUNTERSIGN_MODEL_IMPORTANCE": "model"}, "must be 'logged' or 'worker'"),
        ({"COUNTERSIGN_MODEL_WORKER_ISOLATION": "off"}, "'namespaces' or 'limits-only'"),
        ({"COUNTERSIGN_DATA_MAX_ROWS": "0"}, "COUNTERSIGN_DATA_MAX_ROWS must be a positive"),
        ({"COUNTERSIGN_URL_MAX_IDS": "many"}, "COUNTERSIGN_URL_MAX_IDS must be a whole number"),
    ],
)
def test_the_trust_settings_refuse_unusable_values(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    from app.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env=env, secrets_path=tmp_path / "none.toml")


def test_by_default_no_model_is_loaded_and_every_bound_is_on(tmp_path: Path) -> None:
    from app.settings import Settings

    settings = Settings.from_env(env={}, secrets_path=tmp_path / "none.toml")
    assert settings.model_importance == "logged"
    assert settings.model_worker_isolation == "namespaces"
    assert (settings.data_max_rows, settings.report_cache_max_mb) == (2_000_000, 300)
