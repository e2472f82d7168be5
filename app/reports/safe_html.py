"""Evidently's HTML made safe to show and to download: logged data can never become script.

Evidently 0.7 writes its report as one page whose first `<script>` holds the data as two JSON
values (`var metric_<id> = {...}; var additional_graphs_metric_<id> = {...};`) and whose other
scripts are its own code. `json.dumps` leaves `<`, `>` and `&` as they are, so a column name or
category such as `</script><script>...` closes the data block and runs as script, and `<!--<script>`
changes how the browser finds the block's end.

`safe_report_html` finds the two JSON values with a JSON parser (never by searching for
`</script>`, which the data itself may contain) and rewrites `<`, `>`, `&`, U+2028 and U+2029 as
`\\u` escapes. In JSON text these characters occur only inside strings, where the escape decodes
to the same character, so the data Evidently's code reads is unchanged while no tag can start in
the block. Evidently's own scripts are left exactly as written. The page then gets a
Content-Security-Policy that allows only those scripts (by SHA-256), no inline event handlers, no
`javascript:` URLs and no network access, so even a string that Evidently's code were to insert
as HTML could not run or send the data anywhere. An HTML whose layout is not the one described
here is refused, never passed through.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

from app.errors import UserFacingError

_DATA_START = re.compile(r"<script>\s*var (metric_[0-9a-f]{32}) = ")
_BETWEEN = r";\s*var additional_graphs_{id} = "
_DATA_END = re.compile(r";\s*</script>")
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_HEAD = "<head>"
# What an escaped character becomes inside a JSON string (identical value once decoded).
_JSON_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


class UnsafeReportError(UserFacingError):
    """The HTML does not have the layout this module knows how to make safe (shown, not served)."""


def escape_json_text(text: str) -> str:
    """JSON text with `<`, `>`, `&`, U+2028 and U+2029 written as `\\u` escapes.

    Only valid on JSON text: outside strings JSON has none of these characters, inside a string
    the escape stands for the same character.
    """
    return text.translate(_JSON_ESCAPES)


def _json_end(html: str, start: int, what: str) -> int:
    try:
        _, end = json.JSONDecoder().raw_decode(html, start)
    except ValueError as exc:
        raise UnsafeReportError(f"Evidently's report: the {what} is not JSON ({exc})") from exc
    return int(end)


def _escape_data_block(html: str) -> str:
    first = _DATA_START.search(html)
    if first is None or first.start() != html.find("<script"):
        raise UnsafeReportError("Evidently's report: no data block where one was expected")
    dashboard_end = _json_end(html, first.end(), "dashboard")
    between = re.compile(_BETWEEN.format(id=first.group(1))).match(html, dashboard_end)
    if between is None:
        raise UnsafeReportError("Evidently's report: no graph data after the dashboard")
    graphs_end = _json_end(html, between.end(), "graph data")
    if _DATA_END.match(html, graphs_end) is None:
        raise UnsafeReportError("Evidently's report: the data block does not end after its data")
    return "".join(
        (
            html[: first.end()],
            escape_json_text(html[first.end() : dashboard_end]),
            html[dashboard_end : between.end()],
            escape_json_text(html[between.end() : graphs_end]),
            html[graphs_end:],
        )
    )


def content_security_policy(html: str) -> str:
    """A policy that lets exactly the inline scripts of `html` run, and nothing else load."""
    hashes = sorted(
        {
            "'sha256-"
            + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
            + "'"
            for body in _SCRIPT.findall(html)
        }
    )
    return "; ".join(
        (
            "default-src 'none'",
            "script-src " + " ".join(hashes),
            "style-src 'unsafe-inline'",
            "font-src data:",
            "img-src data: blob:",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )


def safe_report_html(html: str) -> str:
    """Evidently's standalone report with its data escaped and its scripts pinned by a CSP.

    Args:
        html: `Snapshot.get_html_str(as_iframe=False)` of Evidently 0.7.

    Returns:
        The same page: same data, same scripts, safe whatever the data holds.

    Raises:
        UnsafeReportError: The page does not have Evidently's layout; it must not be shown.
    """
    escaped = _escape_data_block(html)
    head = escaped.find(_HEAD)
    if head < 0 or head > escaped.find("<script"):
        raise UnsafeReportError("Evidently's report: no <head> before its scripts")
    body = escaped[head + len(_HEAD) :]
    policy = content_security_policy(body)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    return f"{escaped[:head]}{_HEAD}{meta}{body}"
