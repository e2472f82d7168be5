"""`python -m app.cli drift` through the CLI's entry point."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from app.cli import main


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path / "data"))
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"x": rng.normal(0, 1, 300), "k": rng.integers(0, 3, 300), "id": np.arange(300)}
    )
    current = reference.assign(x=reference["x"] + 1.0)
    reference.to_parquet(tmp_path / "reference.parquet")
    current.to_csv(tmp_path / "current.csv", index=False)
    (tmp_path / "mapping.json").write_text(
        json.dumps({"id": "id", "per_column_threshold": {"k": 0.01}})
    )
    return tmp_path


def test_drift_writes_the_verdict_as_json(files, capsys) -> None:
    out = files / "out" / "drift.json"
    code = main(
        [
            "drift",
            "--reference",
            str(files / "reference.parquet"),
            "--current",
            str(files / "current.csv"),
            "--column-mapping",
            str(files / "mapping.json"),
            "--json",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert set(doc) == {
        "dataset_drift",
        "drift_share",
        "drifted_columns",
        "columns",
        "evidently_version",
    }
    assert [c["column"] for c in doc["columns"]] == ["x", "k"]
    assert set(doc["columns"][0]) == {"column", "type", "method", "score", "threshold", "drifted"}
    assert doc["columns"][0]["method"] == "K-S p_value"
    assert doc["columns"][0]["drifted"] is True
    assert doc["columns"][1]["threshold"] == 0.01
    assert doc["drift_share"] == 0.5
    assert doc["dataset_drift"] is True
    assert list((files / "data" / "cache" / "drift").rglob("*.json"))


def test_drift_prints_to_stdout_and_can_fail_on_drift(files, capsys) -> None:
    args = ["drift", "--reference", str(files / "reference.parquet")]
    args += [
        "--current",
        str(files / "current.csv"),
        "--fail-on-drift",
        "--no-cache",
        "--drift-share",
        "0.3",
    ]
    assert main(args) == 3
    assert json.loads(capsys.readouterr().out)["drifted_columns"] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--current", "missing.csv"], "no such file"),
        (["--current", "bad.csv"], "is not UTF-8 text"),
        (["--current", "current.csv", "--column-mapping", "bad.json"], "not valid JSON"),
    ],
)
def test_a_user_mistake_is_one_line_and_a_non_zero_exit(files, capsys, extra, message) -> None:
    (files / "bad.csv").write_bytes("x,k,id\n1,\xe9,3\n".encode("latin-1"))
    (files / "bad.json").write_text("{roles")
    extra = [str(files / e) if e.endswith((".csv", ".json")) else e for e in extra]
    code = main(["drift", "--reference", str(files / "reference.parquet"), *extra])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.slow
def test_drift_writes_evidently_s_html_report_and_labels_sampling(files, capsys) -> None:
    html = files / "out" / "report.html"
    args = ["drift", "--reference", str(files / "reference.parquet")]
    args += ["--current", str(files / "current.csv"), "--html", str(html)]
    args += ["--sample-rows", "200", "--json", str(files / "out" / "v.json")]
    assert main(args) == 0, capsys.readouterr().err
    assert "SAMPLED" in capsys.readouterr().err
    text = html.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<")
    assert "Dataset Drift" in text  # DataDriftPreset
    assert "Row count" in text  # DataSummaryPreset
