"""`python -m bench.registry`: the registry pages' reads at a real team's scale. ONE JSON line.

The store (bench/_registry_store.py, kept under bench/.cache/registry/) holds 200 registered
models with up to 60 versions each (about 6,000), one source run per version, aliases, legacy
stages, tags and null descriptions. Every figure is cold (no cached read; a new gateway, as after
the cache TTL or a restart) and runs what the page runs through app.deps:

- `models_page_s`: the Models page for its default model (60 versions): every registered model,
  the model's versions, then the chosen version's source run and data sets;
- `compare_versions_s`: Compare versions on 10 versions of that model (summary, deltas,
  signatures, data sets) and its metrics across all versions;
- `overview_s`: the Overview's counts, registered models and the ten latest runs.

Each has `*_mlflow_s`, the same reads through MLflow's own client on the same store in the same
run, and `*_ratio` (ours / MLflow's). `app_peak_rss_mib` is this process's peak resident memory
after the dashboard's reads (before MLflow's own are timed). Targets: Models page and Overview
<= 1 s at 200 models.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import _registry_store as store

CACHE = Path(__file__).resolve().parent / ".cache"
COMPARED = 10


def _timed(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The median of `repeat` cold calls (the call clears what it must itself)."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _ours(repeat: int) -> dict[str, Any]:
    import app.deps as deps

    def cold() -> None:
        deps.clear_caches()
        deps.get_gateway().health()  # connecting is start-up, not a page

    def models_page() -> int:
        models = deps.registered_models()
        chosen = min(models, key=lambda m: m.name).name
        items = sorted(deps.versions(chosen), key=lambda v: int(v.version), reverse=True)
        deps.run_datasets(items[0].run_id)
        deps.runs((items[0].run_id,))
        return len(models)

    def compare_versions() -> int:
        numbers = [str(v) for v in range(store.MAX_VERSIONS - COMPARED + 1, store.MAX_VERSIONS + 1)]
        review = deps.version_review(store.MEASURED, tuple(numbers))
        across = deps.metrics_across_versions(store.MEASURED)
        assert len(review.summary) == COMPARED, review.summary
        assert not review.schema.empty, "signatures were not read"
        return len(across)

    def overview() -> dict[str, int]:
        counts = deps.counts()
        deps.registered_models()
        deps.recent_runs(10)
        return counts

    out: dict[str, Any] = {}
    for name, call in (
        ("models_page", models_page),
        ("compare_versions", compare_versions),
        ("overview", overview),
    ):
        out[f"{name}_s"], out[name] = _timed(lambda c=call: (cold(), c())[1], repeat)
    return out


def _mlflow(uri: str, repeat: int) -> dict[str, float]:
    """The same reads through MlflowClient (a new client each time: nothing cached)."""
    import tempfile

    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    def paged(call: Callable[..., Any], **kwargs: Any) -> list[Any]:
        items, token = [], None
        while True:
            page = call(page_token=token, **kwargs)
            items.extend(page)
            token = page.token
            if not token:
                return items

    def models_page() -> None:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        paged(client.search_registered_models, max_results=1000)
        found = paged(
            client.search_model_versions,
            filter_string=f"name = '{store.MEASURED}'",
            max_results=1000,
        )
        client.get_run(max(found, key=lambda v: int(v.version)).run_id)

    def compare_versions() -> None:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.get_registered_model(store.MEASURED)
        found = paged(
            client.search_model_versions,
            filter_string=f"name = '{store.MEASURED}'",
            max_results=1000,
        )
        for mv in found:
            client.get_run(mv.run_id)  # metrics across versions
        for mv in sorted(found, key=lambda v: int(v.version))[-COMPARED:]:
            with tempfile.TemporaryDirectory() as tmp:
                download_artifacts(artifact_uri=f"{mv.source}/MLmodel", dst_path=tmp)

    def overview() -> None:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiments = paged(client.search_experiments, max_results=1000)
        ids = [e.experiment_id for e in experiments]
        paged(client.search_runs, experiment_ids=ids, max_results=1000)  # no count API
        paged(client.search_registered_models, max_results=1000)
        paged(client.search_model_versions, max_results=10000)
        client.search_runs(ids, order_by=["attributes.start_time DESC"], max_results=10)

    return {
        f"{name}_mlflow_s": _timed(call, repeat)[0]
        for name, call in (
            ("models_page", models_page),
            ("compare_versions", compare_versions),
            ("overview", overview),
        )
    }


def run(repeat: int) -> dict[str, Any]:
    folder = CACHE / "registry"
    built = store.build(folder)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ.update(
        {
            "COUNTERSIGN_DATA_DIR": str(folder),
            "MLFLOW_TRACKING_URI": uri,
            "MLFLOW_REGISTRY_URI": uri,
        }
    )
    # Caching outside a Streamlit server logs a warning per cache; the figures are what matter.
    from streamlit import logger

    logger.set_log_level(logging.ERROR)
    ours = _ours(repeat)
    rss = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    theirs = _mlflow(uri, repeat)
    assert ours["models_page"] == built["models"]
    assert ours["overview"]["versions"] == built["versions"], ours["overview"]
    out: dict[str, Any] = {"models": built["models"], "versions": built["versions"]}
    for name in ("models_page", "compare_versions", "overview"):
        mine, mlflow_s = ours[f"{name}_s"], theirs[f"{name}_mlflow_s"]
        out[f"{name}_s"] = round(mine, 3)
        out[f"{name}_mlflow_s"] = round(mlflow_s, 3)
        out[f"{name}_ratio"] = round(mine / mlflow_s, 3)
    out["compared_versions"] = COMPARED
    out["app_peak_rss_mib"] = rss
    out["loadavg"] = Path("/proc/loadavg").read_text().strip()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="median of this many cold runs")
    args = parser.parse_args()
    print(json.dumps(run(args.repeat)))


if __name__ == "__main__":
    main()
