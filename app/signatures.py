"""Model signatures compared column by column across versions (pure Python and pandas)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

SCHEMA_COLUMNS = ["section", "column", "status"]


def _signature_columns(spec: Any) -> list[tuple[str, str]]:
    """(name, type) pairs of one side of an MLflow signature (dict, list or its JSON text)."""
    if spec is None or spec == "":
        return []
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError:
            return [("(unparsed)", spec)]
    if isinstance(spec, Mapping):
        spec = spec.get("inputs") or spec.get("columns") or [spec]
    pairs = []
    for i, item in enumerate(spec):
        if not isinstance(item, Mapping):
            pairs.append((f"#{i}", str(item)))
            continue
        kind = str(item.get("type", ""))
        if kind == "tensor" and isinstance(item.get("tensor-spec"), Mapping):
            ts = item["tensor-spec"]
            kind = f"tensor {ts.get('dtype', '')} {ts.get('shape', '')}".strip()
        if item.get("required") is False:
            kind += " (optional)"
        pairs.append((str(item.get("name") or f"#{i}"), kind))
    return pairs


def schema_diff(signatures: Mapping[str, Mapping[str, Any] | None]) -> pd.DataFrame:
    """Compare model signatures column by column across versions.

    Args:
        signatures: label -> signature dict with `inputs`/`outputs`/`params` (lists of column
            specs or their JSON text, as `ModelSignature.to_dict()` gives); None when a version
            has no signature.

    Returns:
        One row per (section, column): the type in each version and a status of "same",
        "changed type", "added" or "removed" (relative to the first label).
    """
    labels = list(signatures)
    rows = []
    for section in ("inputs", "outputs", "params"):
        per_label = {
            label: dict(_signature_columns((sig or {}).get(section)))
            for label, sig in signatures.items()
        }
        names: list[str] = []
        for cols in per_label.values():
            names.extend(n for n in cols if n not in names)
        for name in names:
            types = [per_label[label].get(name) for label in labels]
            first = types[0]
            if first is None:
                status = "added"
            elif any(t is None for t in types[1:]):
                status = "removed"
            elif all(t == first for t in types):
                status = "same"
            else:
                status = "changed type"
            row = {"section": section, "column": name, "status": status}
            row.update({label: t for label, t in zip(labels, types, strict=True)})
            rows.append(row)
    return pd.DataFrame(rows, columns=[*SCHEMA_COLUMNS, *labels])
