"""Column types and roles, inferred exactly as Evidently 0.7.23 infers them.

The source of truth is `evidently.core.datasets.infer_column_type`: Evidently infers the types on
the *current* frame, and DataDriftPreset compares the numerical, categorical and text columns, in
that order.
"""

from __future__ import annotations

import pandas as pd

from app.entities import ColumnRoles, DriftConfig
from app.errors import InvalidInput

# Evidently's `INTEGER_CARDINALITY_LIMIT`: integers with at most this many values are categories.
INTEGER_CARDINALITY_LIMIT = 10

NUM, CAT, TEXT, DATETIME, UNKNOWN, LIST = "num", "cat", "text", "datetime", "unknown", "list"
DRIFT_TYPES = (NUM, CAT, TEXT)


def infer_column_type(column: pd.Series) -> str:
    """Evidently's inference for one column: the dtype name decides (nullable ones: unknown)."""
    name = column.dtype.name
    if name.startswith("float"):
        return NUM
    if name.startswith("int"):
        return CAT if column.nunique() <= INTEGER_CARDINALITY_LIMIT else NUM
    if name in ("string", "str"):
        return TEXT if column.nunique() > column.count() * 0.5 else CAT
    if name == "object":
        without_na = column.dropna()
        if without_na.count() == 0:
            return UNKNOWN
        first, last = without_na.iloc[0], without_na.iloc[-1]
        if isinstance(first, str) and isinstance(last, str):
            return TEXT if column.nunique() > column.count() * 0.5 else CAT
        if isinstance(first, (list, tuple)) and isinstance(last, (list, tuple)):
            return LIST
        return UNKNOWN
    if name in ("bool", "category"):
        return CAT
    if name.startswith("datetime"):
        return DATETIME
    return UNKNOWN


def infer_roles(frame: pd.DataFrame) -> dict[str, str]:
    """Every column's inferred type, for the page's editable role table."""
    return {str(name): infer_column_type(frame[name]) for name in frame.columns}


def drift_columns(current: pd.DataFrame, roles: ColumnRoles) -> list[tuple[str, str]]:
    """The (column, type) pairs DataDriftPreset compares, in Evidently's order.

    Raises:
        InvalidInput: A role names a column the data does not have.
    """
    known = set(map(str, current.columns))
    named = [*roles.numerical, *roles.categorical, *roles.text, *roles.datetime, *roles.ignored]
    named += [c for c in (roles.id, roles.target, roles.prediction) if c]
    missing = sorted(set(named) - known)
    if missing:
        raise InvalidInput(f"column roles name unknown columns: {', '.join(missing)}")
    excluded = set(roles.datetime) | set(roles.ignored) | {roles.id}
    forced = {c: NUM for c in roles.numerical}
    forced.update({c: CAT for c in roles.categorical})
    forced.update({c: TEXT for c in roles.text})
    by_type: dict[str, list[str]] = {NUM: [], CAT: [], TEXT: []}
    for name in current.columns:
        key = str(name)
        if key in excluded:
            continue
        kind = forced.get(key) or infer_column_type(current[name])
        if kind in by_type:
            by_type[kind].append(key)
    return [(c, kind) for kind in DRIFT_TYPES for c in by_type[kind]]


ROLE_BY_TYPE = {NUM: "numerical", CAT: "categorical", TEXT: "text", DATETIME: "datetime"}
ROLES = ("numerical", "categorical", "text", "datetime", "id", "target", "prediction", "ignore")


def roles_table(current: pd.DataFrame, roles: ColumnRoles | None = None) -> pd.DataFrame:
    """One editable row per column: role (inferred unless `roles` says), method, threshold."""
    roles = roles or ColumnRoles()
    named = {c: "numerical" for c in roles.numerical}
    named.update({c: "categorical" for c in roles.categorical})
    named.update({c: "text" for c in roles.text})
    named.update({c: "datetime" for c in roles.datetime})
    named.update({c: "ignore" for c in roles.ignored})
    named.update({c: r for r, c in (("id", roles.id), ("target", roles.target)) if c})
    if roles.prediction:
        named[roles.prediction] = "prediction"
    rows = []
    for name in current.columns:
        key = str(name)
        inferred = ROLE_BY_TYPE.get(infer_column_type(current[name]), "ignore")
        role = named.get(key) or (
            "target" if key == "target" else "prediction" if key == "prediction" else inferred
        )
        rows.append({"column": key, "role": role, "method": "", "threshold": None})
    return pd.DataFrame(rows, columns=["column", "role", "method", "threshold"])


def config_from_table(
    table: pd.DataFrame, drift_share: float, sample_rows: int | None = None
) -> DriftConfig:
    """The DriftConfig an edited roles table describes.

    Raises:
        InvalidInput: An unknown role, or more than one id, target or prediction column.
    """
    lists: dict[str, list[str]] = {r: [] for r in ROLES}
    methods: dict[str, str] = {}
    thresholds: dict[str, float] = {}
    for row in table.to_dict("records"):
        column, role = str(row["column"]), str(row.get("role") or "ignore")
        if role not in lists:
            raise InvalidInput(f"column '{column}': unknown role {role!r}")
        lists[role].append(column)
        if row.get("method"):
            methods[column] = str(row["method"])
        threshold = row.get("threshold")
        if threshold is not None and not pd.isna(threshold):
            thresholds[column] = float(threshold)
    for single in ("id", "target", "prediction"):
        if len(lists[single]) > 1:
            raise InvalidInput(f"only one column can be the {single}: {', '.join(lists[single])}")
    # Target and prediction drift are compared too, with their inferred type.
    roles = ColumnRoles(
        numerical=tuple(lists["numerical"]),
        categorical=tuple(lists["categorical"]),
        text=tuple(lists["text"]),
        datetime=tuple(lists["datetime"]),
        id=next(iter(lists["id"]), None),
        target=next(iter(lists["target"]), None),
        prediction=next(iter(lists["prediction"]), None),
        ignored=tuple(lists["ignore"]),
    )
    return DriftConfig(drift_share, roles, methods, thresholds, sample_rows)
