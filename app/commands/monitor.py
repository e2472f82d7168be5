"""`python -m app.cli monitor ...`: score production batches over time, read the timeline and
the findings, close a finding.

    monitor run --model M --version N --current PATH [--current ...] [--as-of ISO]
                [--label COL] [--prediction COL] [--task classification|regression] [--json]
    monitor history --model M --version N [--json]
    monitor findings [--model M] [--version N] [--all] [--json]
    monitor close ID --comment TEXT --as USER --password-stdin [--json]

`--current` takes a CSV or Parquet file, a folder (its data files in name order: what a daily job
points at) or `runs:/RUN_ID/path`; a batch's as-of time is `--as-of`, else a date in its file
name, else now. Scoring the same content again records nothing and answers with the stored batch.
With `--json` every batch is one JSON object on its own line. Runs as the operator `system:cli`
unless `--as USER` (password on stdin) names a person.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from app.commands._cli_support import OPERATOR, acting, actor_flags, json_flag, open_facade, person

if TYPE_CHECKING:
    from app.batch_monitoring.service import BatchMonitoring
    from app.facade import GovernanceFacade


def register(registry: Any) -> None:
    group = registry.group("monitor", "Production batches scored over time, thresholds, findings.")
    p = group.add_parser("run", help="score batches of production data against the reference")
    p.add_argument("--model", required=True)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", help="the model version the batches were scored by")
    which.add_argument("--alias", help="or: the version an alias (e.g. champion) points to now")
    p.add_argument(
        "--current",
        action="append",
        required=True,
        metavar="PATH",
        help="a CSV or Parquet file, a folder of them, or runs:/RUN_ID/path (repeatable)",
    )
    p.add_argument("--as-of", help="ISO 8601 time the batch was observed (one source only)")
    p.add_argument("--label", default="", help="the column of true labels or values")
    p.add_argument("--prediction", default="", help="the column of predictions (or scores)")
    p.add_argument("--task", choices=("classification", "regression"), help="default: inferred")
    actor_flags(p, required=False)
    p.set_defaults(func=_run)

    p = group.add_parser("history", help="the batches of one version, oldest first")
    p.add_argument("--model", required=True)
    p.add_argument("--version", required=True)
    json_flag(p)
    p.set_defaults(func=_history)

    p = group.add_parser("findings", help="open monitoring findings (newest first)")
    p.add_argument("--model", default="")
    p.add_argument("--version", default="")
    p.add_argument("--all", action="store_true", help="closed findings too")
    json_flag(p)
    p.set_defaults(func=_findings)

    p = group.add_parser("close", help="close a finding with a comment (a person, audited)")
    p.add_argument("id")
    p.add_argument("--comment", required=True)
    actor_flags(p)
    p.set_defaults(func=_close)


def _monitoring(facade: GovernanceFacade) -> BatchMonitoring:
    from app.bootstrap import build_batch_monitoring
    from app.settings import Settings

    return build_batch_monitoring(Settings.from_env(), facade)


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _line(view: dict[str, Any]) -> str:
    quality = view.get("quality") or {}
    measured = ", ".join(
        f"{k} {quality[k]:.4g}" for k in ("accuracy", "f1", "roc_auc", "mae", "rmse", "r2")
        if isinstance(quality.get(k), (int, float))
    )  # fmt: skip
    text = (
        f"batch {view['batch_id']} {view['model']} v{view['version']} as of {view['as_of']}: "
        f"{view['rows']} rows, drift share {view['share_drifted']:.3f} "
        f"({len(view['drifted_columns'])} of {len(view['scores'])} columns)"
    )
    text += f"; {measured}" if measured else ""
    text += " (already recorded)" if view["already_recorded"] else ""
    for alert in view.get("alerts", ()):
        text += f"\n  ALERT {alert['finding_id']}: {alert['check']} {alert['value']:.4g} "
        text += f"breaks {alert['limit']}"
    return text


def _run(args: argparse.Namespace) -> int:
    from app.batch_monitoring import sources
    from app.errors import InvalidInput, UserFacingError

    if not args.model.strip():
        raise InvalidInput("--model is empty")
    found = sources.expand(args.current)
    if args.as_of and len(found) > 1:
        raise InvalidInput("--as-of applies to one batch; name the files of a folder by date")
    facade = open_facade()
    actor = acting(facade, args)
    monitoring = _monitoring(facade)
    version = args.version
    if args.alias:
        version = monitoring.reports.gateway.version_by_alias(args.model, args.alias).version
    as_of = sources.parse_as_of(args.as_of, monitoring.now) if args.as_of else None
    failed = 0
    for source in found:
        try:
            outcome = monitoring.run(
                actor,
                args.model,
                str(version),
                source,
                as_of=as_of,
                label=args.label,
                prediction=args.prediction,
                task=args.task,
            )
        except UserFacingError as exc:
            if len(found) == 1:
                raise
            failed += 1  # one bad file in a folder does not stop the others
            print(f"error: {source.text}: {exc}", file=sys.stderr)
            continue
        view = outcome.view()
        if args.json:
            _emit(view)
        else:
            print(_line(view), flush=True)
    return 1 if failed else 0


def _history(args: argparse.Namespace) -> int:
    facade = open_facade()
    batches = _monitoring(facade).history(OPERATOR, args.model, args.version)
    if args.json:
        _emit(
            {
                "model": args.model,
                "version": args.version,
                "batches": [b.summary() for b in batches],
            }
        )
        return 0
    if not batches:
        print(f"{args.model} v{args.version} has no monitoring batches yet")
    for b in batches:
        print(
            f"{b.as_of:%Y-%m-%d %H:%M} {b.batch_id} {b.rows} rows, drift share "
            f"{b.share_drifted:.3f}{' DRIFT' if b.dataset_drift else ''}"
        )
    return 0


def _finding_view(f: Any) -> dict[str, Any]:
    return {
        "id": f.id,
        "model": f.model,
        "version": f.version,
        "check": f.check,
        "limit": f.limit,
        "value": f.value,
        "consecutive": f.consecutive,
        "batch_id": f.batch_id,
        "as_of": f.as_of.isoformat(),
        "opened_at": f.opened_at.isoformat(),
        "state": f.state,
        "closed_at": f.closed_at.isoformat() if f.closed_at else None,
        "closed_by": f.closed_by,
        "comment": f.comment,
    }


def _findings(args: argparse.Namespace) -> int:
    facade = open_facade()
    found = _monitoring(facade).findings(OPERATOR, args.model, args.version, only_open=not args.all)
    if args.json:
        _emit({"findings": [_finding_view(f) for f in found]})
        return 0
    if not found:
        print("no open monitoring findings" if not args.all else "no monitoring findings")
    for f in found:
        print(
            f"{f.id} [{f.state}] {f.model} v{f.version}: {f.check} {f.value:.4g} breaks "
            f"{f.limit} (batch {f.batch_id}, as of {f.as_of:%Y-%m-%d})"
        )
    return 0


def _close(args: argparse.Namespace) -> int:
    facade = open_facade()
    actor, _ = person(facade, args)
    result = _monitoring(facade).close_finding(actor, args.id, args.comment)
    if args.json:
        _emit({**_finding_view(result.finding), "closed_now": result.closed_now})
    else:
        done = "closed" if result.closed_now else f"already closed by {result.finding.closed_by}"
        print(f"finding {args.id}: {done}")
    return 0
