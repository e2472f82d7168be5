"""Daily production batches of the demo store, for its monitoring timeline (frames only).

Batch 1 is the data of the day BATCH_DAYS days before the demo history ends, batch BATCH_DAYS
that of the day before it ends. Each batch mixes the usual population with the shifted one of
`_demo_data` (tumours read by the referral clinic's new scanner; an older, heavier clinic
population for diabetes), and the shifted share grows from day to day, so drift grows over the
weeks: the tumour batches cross half of their columns in the last week, the diabetes batches
stay near a third. Every batch has the label (`target`) and the version's `prediction` (for the
classifier the probability of 1, benign), so quality metrics exist.

Deterministic: batch n is drawn with a generator seeded from n, and the predictions come from
the version's model, which `_demo_data` trains with a fixed seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from app.mlflow_gateway._demo_data import SEED, DemoData, encode

BATCH_DAYS = 19
LABEL, PREDICTION = "target", "prediction"
BATCH_FOLDER = "monitoring"
TUMOR, DIABETES = "tumor-classifier", "diabetes-progression"
# The shifted share: none until batch START, all of it (times TOP) from batch FULL on.
START, FULL = 3, 15
TOP = {TUMOR: 1.0, DIABETES: 0.55}
ROWS = {TUMOR: (160, 220), DIABETES: (120, 170)}
OFFSET = {TUMOR: 1000, DIABETES: 2000}


def batch_path(number: int) -> str:
    """The artifact path of batch `number` in a version's run."""
    return f"{BATCH_FOLDER}/batch-{number:02d}.parquet"


def days_ago(number: int) -> int:
    """How many days before the end of the demo history batch `number`'s data was observed."""
    return BATCH_DAYS + 1 - number


def shifted_share(model: str, number: int) -> float:
    """The share of shifted cases in batch `number` (grows linearly from START to FULL)."""
    ramp = min(1.0, max(0.0, (number - START) / (FULL - START)))
    return TOP[model] * ramp


def _draw(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    return frame.sample(n, replace=False, random_state=int(rng.integers(2**31)))


def _scanner(population: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    # As in `_demo_data.tumor_data`: sizes ~12% larger, areas 25%, noisier textures, and about
    # 55% malignant cases (the referral clinic) instead of 37%.
    malignant = round(n * 0.55)
    cases = pd.concat(
        [
            _draw(population[population[LABEL] == 0], malignant, rng),
            _draw(population[population[LABEL] == 1], n - malignant, rng),
        ],
        ignore_index=True,
    )
    for col in ("mean_radius", "mean_perimeter", "worst_radius", "worst_perimeter"):
        cases[col] = cases[col] * 1.12
    cases["mean_area"] = cases["mean_area"] * 1.25
    cases["mean_texture"] = cases["mean_texture"] + rng.normal(2.0, 2.5, len(cases))
    return cases


def _clinic(population: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    # As in `_demo_data.diabetes_data`: older, heavier, higher blood pressure, 75% men.
    men = round(n * 0.75)
    cases = pd.concat(
        [
            _draw(population[population["sex"] == "M"], men, rng),
            _draw(population[population["sex"] == "F"], n - men, rng),
        ],
        ignore_index=True,
    )
    cases["age"] = (cases["age"] + rng.normal(8, 3, len(cases))).round()
    cases["bmi"] = (cases["bmi"] * 1.1).round(1)
    cases["bp"] = (cases["bp"] + rng.normal(6, 4, len(cases))).round()
    return cases


def production_batch(model: str, data: DemoData, number: int) -> pd.DataFrame:
    """Batch `number` of the model's production inputs with their labels (no prediction yet).

    Raises:
        ValueError: `model` is not a demo model, or `number` is outside 1..BATCH_DAYS.
    """
    if model not in OFFSET or not 1 <= number <= BATCH_DAYS:
        raise ValueError(f"no demo batch {number} for {model!r}")
    rng = np.random.default_rng(SEED + OFFSET[model] + number)
    low, high = ROWS[model]
    rows = int(rng.integers(low, high))
    shifted = round(rows * shifted_share(model, number))
    population = pd.concat([data.reference, data.evaluation], ignore_index=True)
    shift = _scanner if model == TUMOR else _clinic
    mixed = pd.concat(
        [_draw(population, rows - shifted, rng), shift(population, shifted, rng)],
        ignore_index=True,
    )
    order = rng.permutation(len(mixed))
    return mixed.iloc[order].reset_index(drop=True)[list(data.reference.columns)]


def with_prediction(frame: pd.DataFrame, data: DemoData, model: Any, task: str) -> pd.DataFrame:
    """The batch with the version's `prediction` (a classifier's probability of 1)."""
    x = encode(frame, data.features)
    if task == "binary-classification":
        predicted = model.predict_proba(x)[:, 1]
    else:
        predicted = model.predict(x)
    return frame.assign(**{PREDICTION: np.asarray(predicted, dtype="float64")})
