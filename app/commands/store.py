"""`python -m app.cli store check`: the MLflow stores' schema, as Countersign sees it.

Countersign opens a SQL store through MLflow's client only at exactly the schema revision the
installed MLflow expects (MLflow's client would migrate an older store in place). This command
reads each store's revision read-only and says what to do when it differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any


def register(registry: Any) -> None:
    group = registry.group("store", "The MLflow tracking and registry stores.")
    check = group.add_parser(
        "check", help="read each store's MLflow schema revision (read-only); exit 1 on a mismatch"
    )
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    from app.bootstrap import build_gateway
    from app.settings import Settings

    report = build_gateway(Settings.from_env()).schema_report()
    ok = all(s.state == "ok" for s in report)
    if args.json:
        print(json.dumps({"ok": ok, "stores": [dataclasses.asdict(s) for s in report]}))
    else:
        for s in report:
            revision = (
                f" at schema revision {s.revision} (expected {s.expected})" if s.expected else ""
            )
            print(f"{s.role} store {s.uri} [{s.kind}]{revision}: {s.state}")
    for message in dict.fromkeys(s.message for s in report if s.message):
        print(f"error: {message}", file=sys.stderr)
    return 0 if ok else 1
