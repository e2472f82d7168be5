"""`python -m app.cli seed-demo [--if-missing]`: build the demo MLflow store."""

from __future__ import annotations

import argparse
from typing import Any


def register(registry: Any) -> None:
    parser = registry.command(
        "seed-demo",
        "Train scikit-learn models on bundled data sets and fill the demo MLflow store "
        "(idempotent: nothing is duplicated).",
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when the demo store already exists",
    )
    parser.set_defaults(func=_seed_demo)


def _seed_demo(args: argparse.Namespace) -> int:
    from app.demo_users import seed_demo_users
    from app.mlflow_gateway.demo_seed import demo_store_exists, seed_demo
    from app.settings import Settings

    settings = Settings.from_env()
    seed_demo_users(settings)  # also when the MLflow store exists: a new governance database
    if args.if_missing and demo_store_exists(settings):
        print(f"demo store exists at {settings.tracking_uri}: nothing to do")
        return 0
    seed_demo(settings)
    return 0
