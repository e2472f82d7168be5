"""Export and verify a large audit log; prints ONE JSON line.

    python -m bench.export [--events 100000]

The events are sealed into a temporary SQLite governance database (the real store, after
`db upgrade`), exported through the same path as `audit export`, then verified offline.
peak_rss_mb is the process's peak resident memory; rss_before_mb what it held before the export.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.export.bundle import write_bundle
from app.export.model import ExportScope
from app.export.store_source import open_source
from app.export.verify import verify_bundle
from app.settings import Settings


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_events(n: int) -> Iterator[dict[str, Any]]:
    """n events of a busy governance log (requests, votes, executions), as append arguments."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    actions = ("request_created", "vote_recorded", "vote_recorded", "execution_succeeded")
    for seq in range(1, n + 1):
        request = f"req-{seq // 4:06d}"
        yield {
            "actor": ("dana", "alice", "bob", "system:cli")[seq % 4],
            "action": actions[seq % 4],
            "object_type": "request",
            "object_id": request,
            "payload": {
                "model": f"model-{seq % 10}",
                "request_id": request,
                "content_hash": f"{seq:064x}",
                "comment": "reviewed the evidence snapshot and the drift report",
            },
            "at": start + timedelta(seconds=seq),
        }


def seed(settings: Settings, n: int, batch: int = 5000) -> None:
    """Append n events through the store's own AuditLog (sealed, chained, head moved)."""
    from app.bootstrap import build_store, upgrade_governance_db

    upgrade_governance_db(settings)
    store = build_store(settings)
    try:
        events = synthetic_events(n)
        while True:
            chunk = list(itertools.islice(events, batch))
            if not chunk:
                break
            with store.unit_of_work() as uow:
                for event in chunk:
                    uow.audit.append(**event)
                uow.commit()
    finally:
        store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings.from_env(
            {
                "COUNTERSIGN_DATA_DIR": str(folder),
                "COUNTERSIGN_DB_URL": f"sqlite:///{folder / 'governance.db'}",
            }
        )
        seed_started = time.perf_counter()
        seed(settings, args.events)
        seed_s = time.perf_counter() - seed_started
        # the same path as `audit export`: bootstrap (schema check, policy), read-only reads
        with open_source(settings) as source:
            key = Ed25519PrivateKey.generate()
            out = folder / "audit.zip"
            rss_before = _rss_mb()
            started = time.perf_counter()
            summary = write_bundle(source, ExportScope(exporter="bench"), key, out)
            export_s = time.perf_counter() - started
        peak = _peak_mb()
        started = time.perf_counter()
        check = verify_bundle(out, key.public_key())
        verify_s = time.perf_counter() - started
        print(
            json.dumps(
                {
                    "events": check.events,
                    "export_s": round(export_s, 2),
                    "peak_rss_mb": round(peak, 1),
                    "rss_before_mb": round(rss_before, 1),
                    "verify_s": round(verify_s, 2),
                    "bundle_mb": round(out.stat().st_size / 2**20, 2),
                    "seed_s": round(seed_s, 2),
                    "chain_ok": summary.chain_ok,
                    "source": source.__class__.__name__,
                }
            )
        )


if __name__ == "__main__":
    main()
