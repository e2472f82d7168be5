"""Lists in a link are capped: `?runs=` with hundreds of ids costs at most
COUNTERSIGN_URL_MAX_IDS lookups, and the page says what it left out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import app.deps as deps
from app.entities import SignedInUser
from app.mlflow_gateway.gateway import MlflowGateway

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120


@pytest.fixture
def store(demo_data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{demo_data_dir / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    deps.clear_caches()
    yield demo_data_dir
    deps.clear_caches()


@pytest.mark.parametrize(("limit", "looked_up"), [(None, 50), ("7", 7)])
def test_a_link_naming_hundreds_of_runs_costs_at_most_the_cap(
    store: Path, monkeypatch: pytest.MonkeyPatch, limit: str | None, looked_up: int
) -> None:
    if limit:
        monkeypatch.setenv("COUNTERSIGN_URL_MAX_IDS", limit)
    asked: list[str] = []
    original = MlflowGateway.get_runs

    def counting(self: MlflowGateway, run_ids):  # type: ignore[no-untyped-def]
        run_ids = list(run_ids)
        asked.extend(run_ids)
        return original(self, run_ids)

    monkeypatch.setattr(MlflowGateway, "get_runs", counting)
    ids = [f"{i:032x}" for i in range(400)] + ["y" * 5000]
    at = AppTest.from_file(str(ROOT / "pages" / "compare_runs.py"), default_timeout=TIMEOUT)
    now = datetime.now(UTC)
    at.session_state["countersign_user"] = SignedInUser("dana", ("viewer",), "local", now, now)
    at.query_params["runs"] = ",".join(ids)
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    warnings = [str(w.value) for w in at.warning]
    assert any(
        f"it names 400 values, of which the first {looked_up} are used "
        "(raise COUNTERSIGN_URL_MAX_IDS to allow more)"
        in w
        and "1 value(s) longer than 256 characters were ignored" in w
        for w in warnings
    ), warnings
    assert len(set(asked) & set(ids)) == looked_up
