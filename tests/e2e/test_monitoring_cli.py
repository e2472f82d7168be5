"""`python -m app.cli monitor ...` on a copy of the demo store: the real entry point once, then
the same `main` in-process (it reads the same environment) to keep the module fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.cli import main as cli_main
from tests.browser_support import ROOT
from tests.e2e.gov_env import PASSWORDS
from tests.e2e.monitoring_env import DAYS, MODEL, build

pytestmark = pytest.mark.slow
CONTRACT = {"batch_id", "as_of", "rows", "dataset_drift", "share_drifted", "drifted_columns"}


@pytest.fixture(scope="module")
def store(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("monitor-cli")
    env = build(demo_data_dir, root)
    process = subprocess.run(
        [
            sys.executable, "-m", "app.cli", "monitor", "run", "--model", MODEL,
            "--version", "2", "--current", str(root / "batches"), "--label", "target",
            "--prediction", "prediction", "--json",
        ],
        cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return {"env": env, "root": root, "first": process}


@pytest.fixture
def cli(store: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    for key, value in store["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        capsys.readouterr()
        if stdin:
            import io

            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli_main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_monitor_run_scores_a_folder_through_the_entry_point(store: dict[str, Any]) -> None:
    process = store["first"]
    assert process.returncode == 0, process.stderr
    views = lines(process.stdout)
    assert [v["as_of"][:10] for v in views] == list(DAYS)
    for view in views:
        assert set(view) >= CONTRACT
        assert view["rows"] == 150
        assert set(view["scores"]) >= {"mean_radius", "worst_area", "target"}
        assert {"method", "score", "threshold", "drifted"} <= set(view["scores"]["mean_radius"])
        drifted = sorted(c for c, s in view["scores"].items() if s["drifted"])
        assert sorted(view["drifted_columns"]) == drifted
        assert 0 <= view["share_drifted"] <= 1
        assert view["quality"]["task"] == "classification"
        assert set(view["quality"]) >= {"accuracy", "precision", "recall", "f1", "confusion_matrix"}
        assert not view["already_recorded"]
    # With `consecutive: 2`, the second batch alerts on what both first batches crossed.
    crossed = [
        {c for c, over in (("drift_share", v["share_drifted"] > 0.5),
                           ("accuracy", v["quality"]["accuracy"] < 0.98)) if over}
        for v in views
    ]  # fmt: skip
    assert views[0]["alerts"] == []
    assert crossed[0] & crossed[1]  # the demo's drifted, harder batch crosses something
    assert {a["check"] for a in views[1]["alerts"]} == crossed[0] & crossed[1]
    assert "Traceback" not in process.stderr


def test_running_the_same_batches_again_records_nothing(cli: Any) -> None:
    before = audit_count(cli)
    code, out, _ = cli(
        "monitor", "run", "--model", MODEL, "--alias", "champion", "--current",
        str(Path(os.environ["COUNTERSIGN_DATA_DIR"]) / "batches"), "--label", "target",
        "--prediction", "prediction", "--json",
    )  # fmt: skip
    assert code == 0
    assert [v["already_recorded"] for v in lines(out)] == [True, True, True]
    assert audit_count(cli) == before


def audit_count(cli: Any) -> int:
    """Entries in the audit chain other than refusals (a refused request is audited)."""
    from app.bootstrap import build_governance
    from app.settings import Settings

    facade = build_governance(Settings.from_env())
    try:
        with facade.store.unit_of_work(read_only=True) as uow:
            return sum(1 for r in uow.audit.iterate() if r.action != "action_refused")
    finally:
        facade.dispose()


def test_history_lists_the_batches_oldest_first(cli: Any) -> None:
    code, out, _ = cli("monitor", "history", "--model", MODEL, "--version", "2", "--json")
    assert code == 0
    data = json.loads(out)
    assert [b["as_of"][:10] for b in data["batches"]] == list(DAYS)
    assert data["batches"][0]["quality"]["accuracy"] > 0.5


def test_a_data_set_logged_to_mlflow_is_a_batch_too(cli: Any) -> None:
    from app.mlflow_gateway import MlflowGateway
    from app.settings import Settings

    version = MlflowGateway(Settings.from_env()).get_version(MODEL, "3")
    code, out, err = cli(
        "monitor", "run", "--model", MODEL, "--version", "3", "--current",
        f"runs:/{version.run_id}/data/current.parquet", "--as-of", "2026-11-04T06:00:00Z",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    (view,) = lines(out)
    assert view["as_of"] == "2026-11-04T06:00:00+00:00"
    assert "quality" not in view  # no label and prediction named
    assert view["source"] == f"runs:/{version.run_id}/data/current.parquet"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--current", "/nowhere/batch.csv"], "no such file or folder"),
        (["--current", "s3://bucket/x.parquet"], "s3:// sources are not supported"),
        (["--current", "runs:/abc/../../etc/passwd.csv"], "must stay inside the run's artifacts"),
        (
            ["--current", "BATCH", "--label", "nope", "--prediction", "prediction"],
            "no label column",
        ),
        (["--current", "BATCH", "--as-of", "last tuesday"], "not an ISO 8601 date"),
    ],
)
def test_a_mistake_is_one_line_and_records_nothing(
    cli: Any, extra: list[str], message: str
) -> None:
    batch = str(Path(os.environ["COUNTERSIGN_DATA_DIR"]) / "batches" / f"tumor-{DAYS[0]}.parquet")
    before = audit_count(cli)
    argv = ["monitor", "run", "--model", MODEL, "--version", "3"]
    code, _, err = cli(*argv, *[batch if e == "BATCH" else e for e in extra])
    assert code == 1
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert audit_count(cli) == before


def test_one_bad_file_in_a_folder_does_not_stop_the_others(cli: Any, tmp_path: Path) -> None:
    import pandas as pd

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a-2026-11-10.csv").write_text("not,a,batch\n\x00\x01", encoding="latin-1")
    good = pd.read_parquet(
        Path(os.environ["COUNTERSIGN_DATA_DIR"]) / "batches" / f"tumor-{DAYS[0]}.parquet"
    )
    good.head(80).to_parquet(folder / "b-2026-11-11.parquet", index=False)
    code, out, err = cli(
        "monitor", "run", "--model", MODEL, "--version", "3", "--current", str(folder), "--json"
    )
    assert code == 1
    assert "a-2026-11-10.csv" in err
    assert [v["rows"] for v in lines(out)] == [80]


def test_findings_are_listed_and_a_person_closes_one_with_a_comment(cli: Any) -> None:
    code, out, _ = cli("monitor", "findings", "--model", MODEL, "--json")
    assert code == 0
    found = json.loads(out)["findings"]
    drift = next(f for f in found if f["version"] == "2")
    code, _, err = cli("monitor", "close", drift["id"], "--comment", "x", "--as", "vic",
                       "--password-stdin", stdin=PASSWORDS["vic"] + "\n")  # fmt: skip
    assert code == 1
    assert "not allowed" in err
    code, out, err = cli(
        "monitor", "close", drift["id"], "--comment", "new scanner; retraining planned",
        "--as", "erin", "--password-stdin", "--json", stdin=PASSWORDS["erin"] + "\n",
    )  # fmt: skip
    assert code == 0, err
    closed = json.loads(out)
    assert (closed["state"], closed["closed_by"], closed["closed_now"]) == ("closed", "erin", True)
    code, out, _ = cli("monitor", "findings", "--model", MODEL, "--json")
    assert drift["id"] not in {f["id"] for f in json.loads(out)["findings"]}
