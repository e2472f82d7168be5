"""The data-driven page list and the URL list format, without running Streamlit."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.ui import navigation, query


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, []),
        ("", []),
        ("3,4", ["3", "4"]),
        (" 3, 4,,4 ", ["3", "4"]),
        (["a,b", "c"], ["a", "b", "c"]),
    ],
)
def test_a_list_in_the_url_is_comma_separated(raw, expected) -> None:
    assert query.parse_list(raw) == expected


def test_only_pages_whose_file_exists_are_listed() -> None:
    files = [spec.file for spec in navigation.visible_pages()]
    assert files[:5] == [
        "overview.py",
        "experiments.py",
        "compare_runs.py",
        "models.py",
        "compare_versions.py",
    ]
    assert all(Path(navigation.PAGES_DIR, f).is_file() for f in files)


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (None, ["open.py", "admin.py"]),
        ({"viewer"}, ["open.py"]),
        ({"viewer", "admin"}, ["open.py", "admin.py"]),
    ],
)
def test_pages_are_filtered_by_role(roles, expected, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(navigation, "PAGES_DIR", tmp_path)
    for name in ("open.py", "admin.py"):
        (tmp_path / name).write_text("")
    specs = (
        navigation.PageSpec("open.py", "Open", ":material/home:", "A"),
        navigation.PageSpec("admin.py", "Admin", ":material/lock:", "B", roles=("admin",)),
        navigation.PageSpec("missing.py", "Missing", ":material/close:", "B"),
    )
    assert [s.file for s in navigation.visible_pages(roles, specs)] == expected
