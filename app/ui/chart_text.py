"""Text from MLflow or from people, made inert for Plotly.

Plotly.js draws every text of a figure (axis and colour-bar titles, tick labels, legend entries,
hover labels, annotations, subplot titles, bar text) through its own small HTML renderer: `<a
href>` becomes a clickable link, `<span style>` restyles (or covers) the chart, `<b>`, `<i>`,
`<sub>`, `<sup>` and `<br>` format, and entity references become characters. Hover and text
templates also substitute `%{...}` (a value, or a format of it) wherever it stands in the
template, and Plotly Express writes column names, labels and group values (colour, facet) into
the templates it builds.

So every data-derived string goes through `plotly_text` before it reaches a figure: `&`, `<` and
`>` become entity references, which Plotly renders back as the characters (the reader sees the
original text), and `%{` becomes `%&#123;`, which no template matches and which is also shown as
`%{`. Quotes need nothing: without `<` no tag can start. The escaping is injective, so category
values escaped in the data and in `categoryarray`/`category_orders` still match one to one; do
it once, where the figure is built (never in the frames the tables and links use).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

# `&` first, so the entities written for the others are not escaped again.
_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("%{", "%&#123;"))


def plotly_text(value: object) -> str:
    """`value` as text that Plotly shows literally, in labels, hover texts and templates."""
    text = str(value)
    for raw, entity in _ENTITIES:
        text = text.replace(raw, entity)
    return text


def plotly_frame(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """The `columns` of `frame` (those it has), every string cell escaped for Plotly.

    Numbers, dates and missing values stay as they are, so numeric and date axes are unchanged;
    text becomes the category value the figure draws. Column names are kept (they are the keys
    Plotly Express is given); their shown form comes from `plotly_labels`.
    """
    keep = [c for c in dict.fromkeys(columns) if c in frame.columns]
    shown = frame[keep].copy()
    for column in keep:
        if shown[column].dtype == object or pd.api.types.is_string_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: plotly_text(v) if isinstance(v, str) else v)
    return shown


def plotly_labels(columns: Iterable[str], names: Mapping[str, str] | None = None) -> dict[str, str]:
    """Plotly Express `labels`: each column's shown name (from `names`, else itself), escaped.

    Express writes these into axis and legend titles, facet titles and its hover templates.
    """
    names = names or {}
    return {c: plotly_text(names.get(c, c)) for c in dict.fromkeys(columns)}
