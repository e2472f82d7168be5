"""`python -m bench.drift --rows R --cols C`: our verdict against Evidently's DataDriftPreset.

Both run on the same frames in the same process (Evidently imported before any timing). Prints
one JSON line: {"evidently_preset_s", "verdict_s", "speedup", "cache_hit_s",
"max_abs_score_diff", "flag_mismatches"}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def make_frames(rows: int, cols: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numerical columns; every third one shifted in the current frame."""
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({f"f{i}": rng.normal(0.0, 1.0, rows) for i in range(cols)})
    current = pd.DataFrame(
        {f"f{i}": rng.normal(0.3 if i % 3 == 0 else 0.0, 1.0, rows) for i in range(cols)}
    )
    return reference, current


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drift")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cols", type=int, default=50)
    args = parser.parse_args(argv)

    import evidently  # noqa: F401  (import cost is not part of either measurement)

    from app.reports.cache import cached_drift
    from app.reports.evidently_report import run_preset, verdict_from_snapshot
    from app.reports.verdict import compute_drift

    reference, current = make_frames(args.rows, args.cols)

    start = time.perf_counter()
    snapshot = run_preset(reference, current, infer=True)
    preset_s = time.perf_counter() - start
    theirs = verdict_from_snapshot(snapshot)

    start = time.perf_counter()
    ours = compute_drift(reference, current)
    verdict_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        cached_drift(reference, current, None, Path(tmp))  # fill
        start = time.perf_counter()
        cached_drift(reference, current, None, Path(tmp))
        cache_hit_s = time.perf_counter() - start

    by_column = {c.column: c for c in theirs.columns}
    diffs = [abs(c.score - by_column[c.column].score) for c in ours.columns]
    mismatches = sum(
        1
        for c in ours.columns
        if c.drifted != by_column[c.column].drifted or c.method != by_column[c.column].method
    )
    mismatches += len(set(by_column) ^ {c.column for c in ours.columns})
    print(
        json.dumps(
            {
                "evidently_preset_s": round(preset_s, 3),
                "verdict_s": round(verdict_s, 4),
                "speedup": round(preset_s / verdict_s, 1),
                "cache_hit_s": round(cache_hit_s, 4),
                "max_abs_score_diff": max(diffs, default=0.0),
                "flag_mismatches": mismatches,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
