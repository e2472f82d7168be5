"""The history of a model's aliases and stages as the Models page shows it (no Streamlit).

Reads through the governance facade (authorised there) and hands out app.entities only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.entities import TargetHistory, Tenure

if TYPE_CHECKING:
    from app.facade import GovernanceFacade


# The tenures whose version the ledger recorded on the target (what a rollback may restore).
_RECORDED = ("request", "put_back")


def target_history(facade: GovernanceFacade, actor: str, model: str) -> TargetHistory:
    """The history of every alias and stage of `model`, for the Models page.

    Raises:
        NotAllowed: The actor may not view.
    """
    history = facade.history(actor, model)
    tenures = tuple(
        Tenure(
            target=t.target,
            target_kind=t.target_kind,
            version=t.version,
            since=t.since,
            until=t.until,
            source=t.source,
            request_id=t.request_id,
            request_kind=t.request_kind,
            signers=t.signers,
            seq=t.seq,
        )
        for t in history.tenures
    )
    current = {(t.target, t.version) for t in tenures if t.until is None}
    governed = {t.target for t in tenures if t.source in _RECORDED}
    rollback: dict[tuple[str, str], None] = {}
    for t in reversed(tenures):  # newest first
        recorded = t.source in _RECORDED or (t.source == "before_countersign" and t.until)
        past = t.version and t.until and (t.target, t.version) not in current
        if past and recorded and t.target in governed:
            rollback[(t.target, str(t.version))] = None
    return TargetHistory(model, history.known_since, tenures, tuple(rollback))
