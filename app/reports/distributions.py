"""Per-column distributions of reference and current data, ready for overlay charts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.reports.columns import NUM

MAX_CATEGORIES = 20


def overlay(reference: pd.Series, current: pd.Series, kind: str, bins: int = 30) -> pd.DataFrame:
    """Shares per bin (numerical, shared edges) or per category (the most frequent ones).

    Returns:
        Columns `value` (bin centre or category), `width` (bin width; 0 for categories),
        `data` ("reference" or "current") and `share` (fraction of that data's rows).
    """
    if kind == NUM and pd.api.types.is_numeric_dtype(reference):
        ref = reference.to_numpy(np.float64, na_value=np.nan)
        cur = current.to_numpy(np.float64, na_value=np.nan)
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        both = np.concatenate([ref, cur])
        if both.size == 0:
            return pd.DataFrame(columns=["value", "width", "data", "share"])
        edges = np.histogram_bin_edges(both, bins=bins)
        centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        parts = []
        for name, values in (("reference", ref), ("current", cur)):
            counts = np.histogram(values, edges)[0]
            share = counts / max(values.size, 1)
            parts.append(
                pd.DataFrame({"value": centres, "width": widths, "data": name, "share": share})
            )
        return pd.concat(parts, ignore_index=True)
    ref_share = reference.astype(str).value_counts(normalize=True)
    cur_share = current.astype(str).value_counts(normalize=True)
    keep = (ref_share.add(cur_share, fill_value=0)).nlargest(MAX_CATEGORIES).index
    rows = [
        {"value": v, "width": 0.0, "data": name, "share": float(s.get(v, 0.0))}
        for name, s in (("reference", ref_share), ("current", cur_share))
        for v in keep
    ]
    return pd.DataFrame(rows, columns=["value", "width", "data", "share"])
