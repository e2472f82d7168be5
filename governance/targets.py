"""Which names a promotion may move a version to.

A target is a legacy stage (Staging, Production, Archived), a target the policy names, or an
alias that MLflow itself would accept (`mlflow.utils.validation._validate_model_alias_name` and
`_validate_model_alias_name_reserved`: word characters and `-`, at most 255, not `latest`, not
`v<digits>`). Countersign is stricter than MLflow in two ways, both so that a name a reviewer reads
is the name that moves: the letters are ASCII (MLflow's `\\w` also takes look-alike letters such
as a Cyrillic `а` in `chаmpion`), and nothing may follow the name (MLflow's `$` lets a trailing
newline through). Every entry point (request, rollback, break-glass; pages and CLI alike) checks
here before anything is captured or recorded.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from governance.domain import STAGE_TARGETS
from governance.errors import InvalidInput

ALIAS_MAX_LENGTH = 255  # MLflow's MAX_REGISTERED_MODEL_ALIAS_LENGTH
_ALIAS = re.compile(r"[A-Za-z0-9_-]+")
_VERSION_ALIAS = re.compile(r"[vV][0-9]+")  # MLflow reserves these for versions
_RESERVED = "latest"  # and this one, in any case
RULE_TEXT = (
    "a target is a stage (Staging, Production, Archived), a target the policy names, or an alias "
    f"of 1 to {ALIAS_MAX_LENGTH} ASCII letters, digits, '_' or '-' (not 'latest' or v<number>)"
)


def targets_named(document: Mapping[str, Any]) -> frozenset[str]:
    """Every target a policy document names, under `targets` or under a model's `targets`."""
    found = set((document.get("targets") or {}).keys())
    for spec in (document.get("models") or {}).values():
        if isinstance(spec, Mapping):
            found.update((spec.get("targets") or {}).keys())
    return frozenset(str(t) for t in found)


def is_alias_name(name: str) -> bool:
    """Whether MLflow would accept `name` as an alias (ASCII only, see the module docstring)."""
    return (
        len(name) <= ALIAS_MAX_LENGTH
        and _ALIAS.fullmatch(name) is not None
        and _VERSION_ALIAS.fullmatch(name) is None
        and name.lower() != _RESERVED
    )


def check_target(target: str, named: Collection[str] = ()) -> str:
    """The target to use, or a refusal that says what a target may be.

    Args:
        target: The name as the person typed or picked it (surrounding spaces are dropped).
        named: The targets the policy names (`targets_named(policy.document)`).

    Raises:
        InvalidInput: Empty, the stage `None`, or neither a stage, a policy target nor a valid
            alias name.
    """
    name = (target or "").strip()
    if name == "None":  # MLflow's "no stage": nothing to promote to, and no alias either
        raise InvalidInput(f"invalid target 'None': {RULE_TEXT}")
    if name in STAGE_TARGETS or (name and name in named) or is_alias_name(name):
        return name
    shown = repr(target if len(target or "") <= 80 else target[:80] + "...")
    raise InvalidInput(f"invalid target {shown}: {RULE_TEXT}")
