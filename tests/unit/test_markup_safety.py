"""Values from MLflow and people stay data: Markdown escaping, the report frame, the report's
data block and chat notifications."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from app.reports.safe_html import UnsafeReportError, escape_json_text, safe_report_html
from app.ui.report_frame import SANDBOX, sandboxed_document
from app.ui.text import WORD_JOINER, md_code, md_escape, md_join, md_table
from app.webhooks.signing import build_body, slack_escape, summary_text
from tests.markdown_text import shown

WJ = WORD_JOINER
HOSTILE = (
    "[click](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "**bold**",
    ":red[x]",
    "$x$",
    "`code`",
    "# heading",
    "- item",
    "1. item",
    "> quote",
    "a | b",
    "~~gone~~",
    "![x](https://evil.example/t.png)",
    "https://evil.example",
    "www.evil.example",
    "mail@evil.example",
    ":smile: :material/check: :streamlit:",
    "&lt;b&gt;",
    "line one\nline two\r\n===",
    "__init__",
)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("[click](javascript:alert(1))", f"\\[click\\]\\(javascript:{WJ}alert\\(1\\)\\)"),
        ("<img src=x onerror=alert(1)>", "\\<img src\\=x onerror\\=alert\\(1\\)\\>"),
        ("**bold**", "\\*\\*bold\\*\\*"),
        (":red[x]", f":{WJ}red\\[x\\]"),
        ("$x$", "\\$x\\$"),
        ("1. item", "1\\. item"),
        ("# h\n- i", "\\# h \\- i"),
        ("https://e.x", f"https:{WJ}//e\\.x"),
        ("a: b, 'c' \"d\" 50% ok?", "a: b, 'c' \"d\" 50% ok?"),  # plain prose stays as it is
        (3, "3"),
    ],
)
def test_md_escape_writes_each_markdown_character_as_an_escape(value: object, escaped: str) -> None:
    assert md_escape(value) == escaped


@pytest.mark.parametrize("value", HOSTILE)
def test_escaped_text_reads_as_the_value_and_holds_no_markup(value: str) -> None:
    escaped = md_escape(value)
    assert shown(escaped) == " ".join(value.replace("\r\n", "\n").split("\n"))
    assert "\n" not in escaped
    # Every markdown character is preceded by a backslash; every short-code colon is broken.
    assert re.search(r"(?<!\\)[\[\]()*_`#<>|~$&=!@]", escaped) is None
    assert re.search(r":[\w+/-]", escaped) is None


def test_md_code_is_one_literal_code_span_whatever_back_ticks_it_holds() -> None:
    assert md_code("abc123") == "`abc123`"
    assert md_code("a`b") == "``a`b``"
    assert md_code("`x``") == "``` `x`` ```"
    assert md_code("x\ny") == "`x y`"


def test_md_join_escapes_each_value_and_keeps_the_separator() -> None:
    assert md_join(["a*b", "[c]"], " or ") == "a\\*b or \\[c\\]"


def test_md_table_escapes_every_cell_and_header_and_keeps_missing_cells_empty() -> None:
    frame = md_table(
        [
            {"signer": "**Eve**", "comment": "[ok](javascript:x)", "n": None},
            {"signer": "bob", "comment": "fine", "n": float("nan")},
        ]
    )
    assert list(frame["signer"]) == ["\\*\\*Eve\\*\\*", "bob"]
    assert frame["comment"][0] == f"\\[ok\\]\\(javascript:{WJ}x\\)"
    assert list(frame["n"]) == ["", ""]
    headers = md_table(pd.DataFrame({"<b>": [1]}))
    assert list(headers.columns) == ["\\<b\\>"]


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_report_frame_nests_the_report_in_a_sandbox_without_same_origin() -> None:
    report = '<html><body><script>alert("x")</script>&amp; "quoted" </iframe></body></html>'
    tree = _Tree()
    tree.feed(sandboxed_document(report, 'Evidently "report"'))
    tags = [tag for tag, _ in tree.tags]
    assert "script" not in tags
    frames = [attrs for tag, attrs in tree.tags if tag == "iframe"]
    assert len(frames) == 1
    assert frames[0]["sandbox"] == SANDBOX == "allow-scripts"
    assert frames[0]["srcdoc"] == report  # escaped as an attribute, read back unchanged
    assert frames[0]["title"] == 'Evidently "report"'


# ---- Evidently's data block ---------------------------------------------------------------

PAYLOAD = "</script><script>window.__ran=1</script><!--<script> & \u2028"
ID = "metric_" + "0123456789abcdef" * 2


def _report(dashboard: object, graphs: object) -> str:
    """A page with the layout of Evidently 0.7's `file_html_template`."""
    return (
        '\n    <!DOCTYPE html>\n    <html lang="en">\n    <head>\n        <meta charset="UTF-8">'
        "\n        <style>p{}</style>\n        <script>\n"
        f"    var {ID} = {json.dumps(dashboard)};\n"
        f"    var additional_graphs_{ID} = {json.dumps(graphs)};\n</script>\n    </head>\n"
        f'    <body>\n    <div id="root_{ID}">\n    </div>\n'
        "    <script>var global = globalThis</script>\n"
        '    <script>var lib = "<script><\\/script>"; if (1 < 2 && 3 > 2) {}</script>\n'
        f'    <script>\n    window.drawDashboard({ID}, new Map(), "root_{ID}");\n    </script>'
        "\n    </body>\n    </html>\n"
    )


def _scripts(html: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", html, re.DOTALL)


def test_escape_json_text_keeps_the_value_and_removes_every_angle_bracket() -> None:
    text = json.dumps({PAYLOAD: [PAYLOAD, 1.5, None]})
    escaped = escape_json_text(text)
    assert json.loads(escaped) == json.loads(text)
    assert not set("<>&\u2028\u2029") & set(escaped)


def test_the_data_block_is_escaped_and_evidently_s_own_scripts_are_untouched() -> None:
    dashboard = {"name": "Report", "widgets": [{"title": PAYLOAD, "params": {PAYLOAD: 1}}]}
    graphs = {"g1": {"x": [PAYLOAD, "plain"]}}
    raw = _report(dashboard, graphs)
    safe = safe_report_html(raw)
    assert "window.__ran" in safe
    assert "</script><script>window.__ran" not in safe
    assert "<!--" not in safe
    scripts = _scripts(safe)
    assert len(scripts) == 4
    data = scripts[0]
    values = re.findall(r"= (.*);", data)
    assert [json.loads(v) for v in values] == [dashboard, graphs]
    assert not set("<>&") & set(data)
    assert scripts[1:] == _scripts(raw)[-3:]  # the library and the draw call, byte for byte


def test_the_policy_lets_exactly_the_report_s_own_scripts_run() -> None:
    safe = safe_report_html(_report({"name": PAYLOAD}, {}))
    policy = re.search(r'<head><meta http-equiv="Content-Security-Policy" content="([^"]+)">', safe)
    assert policy is not None
    directives = dict(d.split(" ", 1) for d in policy.group(1).split("; "))
    expected = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _scripts(safe)
    }
    assert set(directives["script-src"].split()) == expected
    assert "'unsafe-inline'" not in directives["script-src"]
    assert directives["default-src"] == "'none'"


@pytest.mark.parametrize(
    "html",
    [
        "<html><head></head><body><script>var x = 1;</script></body></html>",
        _report({"a": 1}, {}).replace("</style>", "</style><script>var x=1</script>"),
        _report({"a": 1}, {}).replace(";\n    var additional_graphs_", ";\n    var other_"),
        _report({"a": 1}, {}).replace("};\n</script>", "}; alert(1);\n</script>"),
        "<script>" + _report({"a": 1}, {}),
    ],
    ids=["no-data-block", "data-not-first", "no-graphs", "code-after-data", "script-before"],
)
def test_a_page_without_evidently_s_layout_is_refused(html: str) -> None:
    with pytest.raises(UnsafeReportError):
        safe_report_html(html)


# ---- chat notifications -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<!here>", "&lt;!here&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt;", "&amp;lt;"),
        ("x\nCountersign: Request approved", "x Countersign: Request approved"),
    ],
)
def test_slack_escape_leaves_no_control_sequence(value: str, escaped: str) -> None:
    assert slack_escape(value) == escaped


def test_the_chat_text_escapes_every_value_from_mlflow_or_a_person() -> None:
    event = {
        "action": "vote_recorded",
        "actor": "<!channel> eve",
        "object_type": "request",
        "object_id": "<@U1>",
        "seq": 7,
        "ts": "2026-11-30T00:00:00Z",
        "entry_hash": "h",
        "payload": json.dumps(
            {
                "model": "<https://evil.example|credit>",
                "version": "3 & <!here>",
                "target": "champion\n<!everyone>",
                "decision": "<approve>",
            }
        ),
    }
    text = summary_text(event, json.loads(str(event["payload"])))
    assert text == (
        "Countersign: Vote recorded &lt;https://evil.example|credit&gt; v3 &amp; &lt;!here&gt; "
        "-> champion &lt;!everyone&gt; (&lt;approve&gt;) by &lt;!channel&gt; eve "
        "[request &lt;@U1&gt;, audit #7]"
    )
    assert "<" not in text.replace("-> ", "")
    body = json.loads(build_body(event, "d1"))
    assert body["text"] == text
    assert body["mrkdwn"] is False
    assert body["data"]["model"] == "<https://evil.example|credit>"  # the data stays as recorded
