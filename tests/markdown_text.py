"""What a person reads in a Markdown body that `app.ui.text.md_escape` escaped."""

from __future__ import annotations

import re

from app.ui.text import WORD_JOINER


def shown(markdown: str) -> str:
    """The text as rendered: backslash escapes resolved, invisible word joiners gone."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace(WORD_JOINER, "")
