"""The Models page's history table: what each tenure says about its holder."""

from __future__ import annotations

from datetime import UTC, datetime

from app.entities import TargetHistory, Tenure
from app.ui.history import frame

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def tenure(version: str | None, source: str, since: str | None, until: str | None) -> Tenure:
    return Tenure("champion", "alias", version, since, until, source)


def test_a_holder_nobody_knows_is_unknown_and_a_removed_alias_is_held_by_nobody() -> None:
    history = TargetHistory(
        "iris",
        "2026-12-01T09:00:00.000000Z",
        (
            tenure(None, "before_countersign", None, "2026-12-01T09:00:00.000000Z"),
            tenure("4", "out_of_band", "2026-12-01T09:00:00.000000Z", "2026-12-02T09:00:00.000Z"),
            tenure(None, "put_back", "2026-12-02T09:00:00.000000Z", None),
        ),
        (),
    )
    rows = frame(history, NOW)
    assert list(rows["version"]) == ["unknown", "v4", "nobody"]
    assert list(rows["how"]) == [
        "before Countersign knew it",
        "OUT OF BAND",
        "put back by Countersign",
    ]
    assert rows["from (UTC)"].iloc[0] == "before Countersign knew"
