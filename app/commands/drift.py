"""`python -m app.cli drift`: Evidently's drift verdict on two files, as JSON (and HTML)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.entities import ColumnRoles, DriftConfig
from app.errors import InvalidInput

ROLE_LISTS = ("numerical", "categorical", "text", "datetime", "ignored")
ROLE_SINGLE = ("id", "target", "prediction")
MAPPING_KEYS = (*ROLE_LISTS, *ROLE_SINGLE, "per_column_method", "per_column_threshold")


def register(registry: Any) -> None:
    parser = registry.command(
        "drift", "Compare two data sets with Evidently's DataDriftPreset verdict"
    )
    parser.add_argument("--reference", required=True, type=Path, help="CSV or Parquet file")
    parser.add_argument("--current", required=True, type=Path, help="CSV or Parquet file")
    parser.add_argument(
        "--column-mapping",
        type=Path,
        help="JSON: column roles (numerical, categorical, text, datetime, ignored, id, target, "
        "prediction), per_column_method, per_column_threshold, drift_share",
    )
    parser.add_argument("--json", type=Path, help="write the verdict here (default: stdout)")
    parser.add_argument("--html", type=Path, help="also write Evidently's full HTML report here")
    parser.add_argument("--drift-share", type=float, help="share of drifted columns (0.5)")
    parser.add_argument("--sample-rows", type=int, help="sample larger inputs to this many rows")
    parser.add_argument("--no-cache", action="store_true", help="recompute; skip the disk cache")
    parser.add_argument(
        "--fail-on-drift", action="store_true", help="exit with code 3 when the data set drifted"
    )
    parser.set_defaults(func=run)


def load_config(
    path: Path | None, drift_share: float | None, sample_rows: int | None
) -> DriftConfig:
    """The drift configuration from a column-mapping JSON file and the flags."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot be read ({exc.strerror})") from exc
        except ValueError as exc:
            raise InvalidInput(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise InvalidInput(f"{path}: expected a JSON object of column roles")
        unknown = sorted(set(data) - {*MAPPING_KEYS, "drift_share"})
        if unknown:
            raise InvalidInput(f"{path}: unknown keys {', '.join(unknown)}")
    try:
        roles = ColumnRoles(
            **{k: tuple(str(c) for c in data.get(k) or ()) for k in ROLE_LISTS},
            **{k: (str(data[k]) if data.get(k) else None) for k in ROLE_SINGLE},
        )
        share = float(drift_share if drift_share is not None else data.get("drift_share", 0.5))
        methods = {str(k): str(v) for k, v in (data.get("per_column_method") or {}).items()}
        thresholds = {str(k): float(v) for k, v in (data.get("per_column_threshold") or {}).items()}
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"column mapping: {exc}") from exc
    if not 0 < share <= 1:
        raise InvalidInput("drift share must be in (0, 1]")
    if sample_rows is not None and sample_rows < 2:
        raise InvalidInput("--sample-rows must be at least 2")
    return DriftConfig(share, roles, methods, thresholds, sample_rows)


def run(args: argparse.Namespace) -> int:
    from app.bootstrap import data_limits
    from app.reports.cache import cached_drift
    from app.reports.uploads import check_compatible, read_path
    from app.reports.verdict import compute_drift
    from app.settings import Settings

    settings = Settings.from_env()
    config = load_config(args.column_mapping, args.drift_share, args.sample_rows)
    limits = data_limits(settings)
    reference = read_path(args.reference, limits)
    current = read_path(args.current, limits)
    check_compatible(reference, current)
    if args.no_cache:
        result = compute_drift(reference, current, config)
    else:
        result = cached_drift(
            reference, current, config, settings.cache_dir, settings.report_cache_max_mb
        )
    if result.sampled:
        print(
            f"note: SAMPLED verdict ({result.reference_rows} reference and "
            f"{result.current_rows} current rows)",
            file=sys.stderr,
        )
    text = json.dumps(result.to_dict(), indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    if args.html:
        from app.reports.cache import cached_report_html
        from app.reports.evidently_report import report_html

        if args.no_cache:
            html = report_html(reference, current, config)
        else:
            html = cached_report_html(
                reference, current, config, settings.cache_dir, settings.report_cache_max_mb
            ).read_text(encoding="utf-8")
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(html, encoding="utf-8")
    return 3 if args.fail_on_drift and result.dataset_drift else 0
