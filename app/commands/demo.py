"""`python -m app.cli seed-demo [--if-missing]`: the demo MLflow store, users and history."""

from __future__ import annotations

import argparse
from typing import Any


def register(registry: Any) -> None:
    parser = registry.command(
        "seed-demo",
        "Train scikit-learn models on bundled data sets into the demo MLflow store, then create "
        "the demo users and their governance history (idempotent: nothing is duplicated).",
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="train nothing when the demo store already exists (a new governance database "
        "still gets the demo users and history)",
    )
    parser.set_defaults(func=_seed_demo)


def _seed_demo(args: argparse.Namespace) -> int:
    from app.demo_history import seed_demo_governance
    from app.mlflow_gateway.demo_seed import demo_store_exists, seed_demo
    from app.settings import Settings

    settings = Settings.from_env()
    if args.if_missing and demo_store_exists(settings):
        print(f"demo store exists at {settings.tracking_uri}: nothing to train")
    else:
        seed_demo(settings)
    # Also when the MLflow store exists: a new governance database gets its users and history.
    seed_demo_governance(settings)
    return 0
