"""A registered model whose every name and value is an attack, for the markup and report tests.

An MLflow writer controls the model name, the run's author tag, descriptions and tags, the
logged data sets (their column names and values) and logged artifacts such as
`feature_importance.json`. `add_hostile_model` writes all of them into an MLflow store, with the
run's artifacts under a folder of the caller (never the shared demo store's artifacts).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

# Script payloads: if any of them runs, the top window's title or a global changes.
CLOSE_SCRIPT = (
    "</script><script>window.top.__pwned='close';window.top.document.title='PWNED';"
    "window.__ran=1</script>"
)
COMMENT_SCRIPT = "<!--<script>"
IMG = "<img src=x onerror=\"window.top.__pwned='img';window.__ran=1\">"
JS_URL = "javascript:window.top.__pwned='js'"
SCRIPT_PAYLOADS = (CLOSE_SCRIPT, COMMENT_SCRIPT, IMG)  # none may appear raw in a report
# Markdown payloads: links, emphasis, colour, maths, emoji, HTML, list and heading markers.
MARKDOWN = "[click](javascript:alert(1)) **bold** :red[x] $x$ :smile: <b>b</b>"
# MLflow refuses '/' and ':' in model names; everything else is allowed.
MODEL = "hostile [click](https_evil) **bold** <img src=x onerror=alert(1)> $x$ ~~s~~"
AUTHOR = "**Risk officer** [ok](javascript:alert(1)) <img src=x onerror=alert(1)>"
DESCRIPTION = "# Approved\n- by **everyone** [docs](javascript:alert(2)) :white_check_mark:"
FEATURE = "feature [x](javascript:alert(3)) **f**"
# Plotly markup: a link, a style that covers the chart, bold text and a hover-template field.
PLOTLY = '<a href="http://evil.example/">evil link</a><span style="font-size:100px">BIG</span>'
PLOTLY += " <b>bold</b> %{y}"
EXTRA_COLUMN = MARKDOWN  # only in the current data: the drift page names it in a caption


def hostile_frames(rows: int = 240) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current data whose column names and categories are the payloads."""
    rng = np.random.default_rng(7)
    categories = np.array([CLOSE_SCRIPT, COMMENT_SCRIPT, IMG, JS_URL, "plain"])
    reference = pd.DataFrame(
        {
            CLOSE_SCRIPT: rng.normal(0, 1, rows),
            IMG: rng.normal(5, 2, rows),
            "segment": rng.choice(categories, rows),
            FEATURE: rng.normal(0, 1, rows),
            PLOTLY: rng.normal(0, 1, rows),  # the same in the current data: not drifted
        }
    )
    current = reference.assign(**{IMG: reference[IMG] + 3.0, EXTRA_COLUMN: 1.0})
    return reference, current


def add_hostile_model(tracking_uri: str, artifacts: Path) -> str:
    """Register MODEL version 1 in the store at `tracking_uri`; returns the run id.

    The run (author AUTHOR, metric accuracy) logs data/reference.parquet, data/current.parquet
    and feature_importance.json; the model and its version carry hostile descriptions and tags.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.create_experiment("hostile", artifact_location=artifacts.as_uri())
    run = client.create_run(experiment, tags={"mlflow.user": AUTHOR, "note": MARKDOWN})
    run_id = run.info.run_id
    client.log_metric(run_id, "accuracy", 0.9)
    client.log_param(run_id, "depth", MARKDOWN)
    reference, current = hostile_frames()
    importance = {
        "model": MODEL,
        "method": MARKDOWN,
        "features": [{"feature": FEATURE, "importance": 0.7}, {"feature": IMG, "importance": 0.3}],
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "data").mkdir()
        reference.to_parquet(folder / "data" / "reference.parquet", index=False)
        current.to_parquet(folder / "data" / "current.parquet", index=False)
        (folder / "feature_importance.json").write_text(json.dumps(importance), encoding="utf-8")
        client.log_artifacts(run_id, str(folder / "data"), "data")
        client.log_artifact(run_id, str(folder / "feature_importance.json"))
    client.set_terminated(run_id, "FINISHED")
    client.create_registered_model(MODEL, tags={"note": MARKDOWN}, description=DESCRIPTION)
    client.create_model_version(
        MODEL,
        source=f"{run.info.artifact_uri}/data",
        run_id=run_id,
        description=DESCRIPTION,
        tags={"note": MARKDOWN},
    )
    return run_id
