"""`python -m app.cli history --model M [--at ISO] [--json]`: who held each alias and stage.

Without --at, every tenure of every target (from when to when, by which request and signers,
out of band, put back, or before Countersign knew the model). With --at, the holder of each
target at that moment: "which version held champion at time T".
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from app.commands import _governance_views as views
from app.commands._cli_support import OPERATOR, json_flag, open_facade
from app.errors import InvalidInput
from governance.audit import format_ts

SOURCE_WORDS = {
    "request": "by request",
    "out_of_band": "OUT OF BAND",
    "put_back": "put back by Countersign",
    "before_countersign": "before Countersign knew the model",
    "not_yet_compared": "in MLflow now, not yet compared",
}


def register(registry: Any) -> None:
    p = registry.command("history", "Which version held each alias and stage, when, and why.")
    p.add_argument("--model", required=True)
    p.add_argument("--at", metavar="ISO", help="a moment, e.g. 2026-12-01T09:30:00Z (UTC)")
    json_flag(p)
    p.set_defaults(func=cmd_history)


def parse_moment(text: str) -> datetime:
    """An ISO 8601 moment; without an offset it is read as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--at must be an ISO 8601 moment such as 2026-12-01T09:30:00Z, "
                           f"got {text!r}") from None  # fmt: skip
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def tenure_view(t: Any) -> dict[str, Any]:
    return {
        "target": t.target,
        "target_kind": t.target_kind,
        "version": t.version,
        "since": t.since,
        "until": t.until,
        "source": t.source,
        "request_id": t.request_id,
        "request_kind": t.request_kind,
        "signers": list(t.signers),
        "actor": t.actor,
        "seq": t.seq,
    }


def _line(t: Any) -> str:
    held = f"v{t.version}" if t.version else "nobody" if t.source != "before_countersign" else "?"
    span = f"{t.since or '(unknown)'} .. {t.until or 'now'}"
    why = SOURCE_WORDS.get(t.source, t.source)
    if t.request_id:
        kind = "" if t.request_kind in (None, "normal") else f" {t.request_kind}"
        why += f" {t.request_id}{kind}, signed by {', '.join(t.signers) or '-'}"
    return f"{t.target_kind} {t.target:<12} {held:<8} {span}  {why}"


def cmd_history(args: argparse.Namespace) -> int:
    moment = parse_moment(args.at) if args.at else None
    history = open_facade().history(OPERATOR, args.model)
    if moment is not None:
        holders = history.at(moment)
        before = history.known_since is None or format_ts(moment) < history.known_since
        note = (
            f"Countersign has no record of {args.model} before {history.known_since or 'now'}: "
            "what held a target then is what Countersign found later, or unknown"
            if before
            else ""
        )
        if args.json:
            views.emit(
                {
                    "model": history.model,
                    "at": format_ts(moment),
                    "known_since": history.known_since,
                    "before_countersign": before,
                    "note": note,
                    "holders": [tenure_view(t) for t in holders],
                }
            )
            return 0
        if note:
            print(f"note: {note}")
        for t in holders:
            print(_line(t))
        return 0
    if args.json:
        now = None
        if history.now is not None:
            now = {f"{kind}/{target}": list(v) for (kind, target), v in sorted(history.now.items())}
        views.emit(
            {
                "model": history.model,
                "known_since": history.known_since,
                "tenures": [tenure_view(t) for t in history.tenures],
                "now": now,
            }
        )
        return 0
    if not history.tenures:
        print(f"{args.model}: no alias or stage recorded or held")
    for t in history.tenures:
        print(_line(t))
    return 0
