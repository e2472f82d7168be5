"""Text from MLflow or from people, made inert for Streamlit's Markdown.

Streamlit renders Markdown in far more places than `st.markdown`: captions, headers, the
success/info/warning/error banners, `st.table` cells and headers, metric, button, tab, expander
and link labels, `st.write` of a string. There a model name such as `[click](https://evil)`
becomes a link, `**APPROVED**` bold text, `$x$` LaTeX, `:red[x]` coloured text and
`:white_check_mark:` an emoji. Every such value goes through `md_escape` (or `md_code` inside
back-ticks, or `md_table` for a table) before it reaches one of those elements; multi-line text
is shown with `st.text`, which renders nothing.

No Streamlit element renders raw HTML unless asked to (`unsafe_allow_html`, `st.html`), and
Countersign never asks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

# Every character with a meaning in CommonMark, GFM or Streamlit's extensions: emphasis, code,
# links and images, HTML and entities, headings (`#`, setext `=`/`-`), lists (`-`, `+`, `*`,
# `1.`), block quotes, tables, strike-through, `$` maths, `{}` attributes, e-mail autolinks.
# CommonMark lets a backslash escape any ASCII punctuation, so each of them shows literally.
_SPECIAL = frozenset("\\`*_{}[]()#+-.!|<>~$&=@")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x85\u2028\u2029]")
# Emoji (`:smile:`), Material icons (`:material/check:`) and `:streamlit:` are replaced in the
# rendered text, after escapes are gone; an invisible word joiner after the colon breaks them.
_SHORTCODE = re.compile(r":(?=[\w+\-/])")
WORD_JOINER = "\u2060"


def md_escape(value: object) -> str:
    """`value` as text that Streamlit's Markdown shows literally, on one line.

    Markdown's special characters get a backslash (links, images, emphasis, code, headings,
    lists, tables, HTML, `$` maths, `~` strike-through); a colon that could open an emoji, icon
    or `:colour[...]` directive, or a `https://` autolink, gets an invisible word joiner; line
    breaks become spaces, so a value can never start a block of its own.
    """
    text = _SHORTCODE.sub(":" + WORD_JOINER, _LINE_BREAKS.sub(" ", str(value)))
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


def md_code(value: object) -> str:
    """`value` as an inline code span (back-ticks), literal whatever back-ticks it contains."""
    text = _LINE_BREAKS.sub(" ", str(value))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_join(values: Iterable[object], sep: str = ", ") -> str:
    """Several values, each escaped, joined by `sep` (which is ours, so not escaped)."""
    return sep.join(md_escape(v) for v in values)


def md_table(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """A frame for `st.table` (which renders every cell and header as Markdown), all escaped.

    None and NaN stay empty cells; everything else is shown as its text.
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    shown = frame.apply(lambda col: col.map(lambda v: "" if _missing(v) else md_escape(v)))
    shown.columns = [md_escape(c) for c in frame.columns]
    return shown


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)
