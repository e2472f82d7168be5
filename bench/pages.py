"""`python -m bench.pages`: how long a page switch takes in a real browser. Prints ONE JSON line.

Starts `streamlit run app/main.py` on the demo store (seeded with `python -m app.cli seed-demo`
under bench/.cache/pages-demo-*, again whenever the seed's code changes), signs in as the demo
admin (who may open all eight read pages) in Debian's Chromium, and times page switches from the
click in the navigation until Streamlit's script state is back to not running (see
bench/_served.py):

- `first_visit_s`: the first visit of each page after the server started (the first one is the
  sign-in, which lands on Overview), before anything of that page was cached;
- then one warm-up round, then `--rounds` rounds over the eight pages: per page `median_s` and
  `p95_s` over the rounds, and `overall_p95_s` over every switch.

`--tracking-uri URI` runs the same on another store (e.g. the registry benchmark's) with a
governance database of its own; `server_peak_rss_mib` is the app process's peak resident memory.
Targets: every page's p95 <= 0.6 s warm and <= 3 s on its first visit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import _served

CACHE = Path(__file__).resolve().parent / ".cache"
DEMO_ADMIN = ("admin", "admin-demo-pass")
BENCH_ADMIN = ("bench-admin", "bench-admin-pass-1")
# The read pages, in navigation order: (title in the navigation, url path).
PAGES = (
    ("Overview", "overview"),
    ("Experiments", "experiments"),
    ("Compare runs", "compare_runs"),
    ("Models", "models"),
    ("Compare versions", "compare_versions"),
    ("Drift", "drift"),
    ("Feature importance", "feature_importance"),
    ("Audit log", "audit"),
)
TARGET_WARM_P95_S, TARGET_FIRST_S = 0.6, 3.0


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=_served.ROOT,
        env=env,
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
    )


def prepare(tracking_uri: str | None) -> tuple[dict[str, str], tuple[str, str]]:
    """The app's environment and the account to sign in with; builds the store once."""
    if tracking_uri is None:
        # Rebuilt whenever the demo seed changes: the figures are for the demo people get.
        seed = _served.ROOT / "app" / "mlflow_gateway"
        digest = hashlib.sha256(
            b"".join((seed / f).read_bytes() for f in ("demo_seed.py", "_demo_data.py"))
        ).hexdigest()[:12]
        folder = CACHE / f"pages-demo-{digest}"
        env = _served.environment({"COUNTERSIGN_DATA_DIR": str(folder), "COUNTERSIGN_DEMO": "1"})
        folder.mkdir(parents=True, exist_ok=True)
        _cli(env, "db", "upgrade")  # the code may have gained a migration since the last run
        if not (folder / "complete").is_file():
            _cli(env, "seed-demo")
            (folder / "complete").write_text("demo store\n")
        return env, DEMO_ADMIN
    digest = hashlib.sha256(tracking_uri.encode()).hexdigest()[:12]
    folder = CACHE / f"pages-{digest}"
    env = _served.environment(
        {"COUNTERSIGN_DATA_DIR": str(folder), "MLFLOW_TRACKING_URI": tracking_uri}
    )
    folder.mkdir(parents=True, exist_ok=True)
    _cli(env, "db", "upgrade")
    if not (folder / "complete").is_file():
        name, password = BENCH_ADMIN
        _cli(env, "users", "add", name, "--role", "admin", "--password-stdin", stdin=password)
        (folder / "complete").write_text(tracking_uri + "\n")
    return env, BENCH_ADMIN


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _sign_in(page: Any, url: str, account: tuple[str, str], signals: dict[str, int]) -> float:
    page.goto(url)
    page.get_by_role("textbox", name="Username").wait_for()
    _served.observe(page)
    page.get_by_role("textbox", name="Username").fill(account[0])
    page.get_by_role("textbox", name="Password", exact=True).fill(account[1])
    page.get_by_role("button", name="Log in").click()
    took, how = _served.settle(page)
    page.get_by_role("heading", name="Overview", exact=True).wait_for()
    signals[how] = signals.get(how, 0) + 1
    return took


def _switch(
    page: Any, title: str, path: str, problems: list[str], signals: dict[str, int]
) -> float:
    nav = page.locator('[data-testid="stSidebarNav"]')
    link = nav.get_by_role("link", name=title, exact=True)
    if not link.is_visible():
        nav.get_by_role("button", name="View more").click()
    link.click()
    took, how = _served.settle(page)
    signals[how] = signals.get(how, 0) + 1
    if not page.url.split("?")[0].rstrip("/").endswith(path) and path != "overview":
        problems.append(f"{title}: landed on {page.url}")
    problems.extend(f"{title}: {text}" for text in _served.errors_shown(page))
    return took


def run(rounds: int, tracking_uri: str | None) -> dict[str, Any]:
    env, account = prepare(tracking_uri)
    log = CACHE / "pages-streamlit.log"
    problems: list[str] = []
    signals: dict[str, int] = {}
    first: dict[str, float] = {}
    warm: dict[str, list[float]] = {title: [] for title, _ in PAGES}
    with _served.served(env, log) as server, _served.chromium_page() as page:
        started = time.perf_counter()
        first[PAGES[0][0]] = _sign_in(page, server.url, account, signals)
        for title, path in PAGES[1:]:
            first[title] = _switch(page, title, path, problems, signals)
        for _ in range(1 + rounds):  # the first round warms, the others count
            for title, path in PAGES:
                took = _switch(page, title, path, problems, signals)
                if _ > 0:
                    warm[title].append(took)
        total_s = time.perf_counter() - started
        rss = _served.peak_rss_mib(server.proc.pid)
    every = [t for values in warm.values() for t in values]
    pages = {
        title: {
            "median_s": round(statistics.median(values), 3),
            "p95_s": round(percentile(values, 0.95), 3),
        }
        for title, values in warm.items()
    }
    return {
        "store": tracking_uri or "demo",
        "rounds": rounds,
        "pages": pages,
        "overall_p95_s": round(percentile(every, 0.95), 3),
        "overall_median_s": round(statistics.median(every), 3),
        "first_visit_s": {title: round(t, 3) for title, t in first.items()},
        "targets_met": all(p["p95_s"] <= TARGET_WARM_P95_S for p in pages.values())
        and all(t <= TARGET_FIRST_S for t in first.values()),
        "server_peak_rss_mib": rss,
        "signals": signals,
        "errors": sorted(set(problems))[:10],
        "wall_s": round(total_s, 1),
        "loadavg": _served.load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tracking-uri", default=None, help="another store (default: the demo)")
    args = parser.parse_args()
    print(json.dumps(run(args.rounds, args.tracking_uri)))


if __name__ == "__main__":
    main()
