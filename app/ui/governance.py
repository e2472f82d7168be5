"""Governance pieces shared by the promotion, approval, audit, model and overview pages.

No I/O: evidence dicts, requests, votes and audit events in, Streamlit elements out. Every
value from MLflow or from a person (names, targets, justifications, comments, gate details,
error texts) goes through `app.ui.text` (`md_escape`, `md_table`) or a plain-text element.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import streamlit as st

from app.entities import ActivityEvent, MonitoringFlag, OutOfBandFlag
from app.errors import UserFacingError
from app.ui import charts, navigation, tables
from app.ui.guard import escape_markdown
from app.ui.text import md_escape, md_table
from governance.domain import PromotionRequest, RequestDetails, RequestKind
from governance.errors import GovernanceError

LOUD_ACTIONS = ("break_glass", "out_of_band_change", "out_of_band_reverted")
STATE_ICONS = {
    "pending": "⏳",
    "approved": "✅",
    "executed": "🚀",
    "execution_failed": "⚠️",
    "rejected": "⛔",
    "cancelled": "✖️",
    "expired": "⌛",
    "superseded": "↪️",
}


def state_text(state: str) -> str:
    return f"{STATE_ICONS.get(state, '')} {state}".strip()


def request_title(req: PromotionRequest) -> str:
    """`Request abc123: tumor-classifier v3 → champion` (plain text, for buttons and headers)."""
    kind = "" if req.kind == RequestKind.NORMAL else f" [{req.kind.replace('_', '-')}]"
    return f"Request {req.id}: {req.model} v{req.version} → {req.target}{kind}"


def deltas_frame(evidence: Mapping[str, Any]) -> pd.DataFrame:
    """Candidate versus current holder per metric, in the columns `tables.deltas` colours."""
    rows = []
    for metric, d in sorted((evidence.get("metric_deltas") or {}).items()):
        cand, cur, delta = d.get("candidate"), d.get("current"), d.get("delta")
        verdict = "n/a"
        if delta is not None:
            gain = -delta if d.get("lower_is_better") else delta
            verdict = "better" if gain > 0 else "worse" if gain < 0 else "same"
        pct = (delta / abs(cur) * 100.0) if delta is not None and cur else None
        rows.append(
            {
                "metric": metric,
                "baseline": cur,
                "value": cand,
                "delta": delta,
                "delta_pct": pct,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(
        rows, columns=["metric", "baseline", "value", "delta", "delta_pct", "verdict"]
    )


def evidence(data: Mapping[str, Any], evidence_hash: str, *, chart: bool = True) -> None:
    """The evidence snapshot: deltas against the current holder, gates, params, drift."""
    current = data.get("current")
    cand = data.get("candidate") or {}
    holder = f"v{md_escape(current['version'])}" if current else "nobody (first holder)"
    st.markdown(
        f"**Candidate** v{escape_markdown(str(data.get('version')))} "
        f"(run author {escape_markdown(str(cand.get('run_author') or 'unknown'))}) versus "
        f"**current holder** of {escape_markdown(str(data.get('target')))}: {holder}"
    )
    st.caption(f"Evidence SHA-256: `{evidence_hash}`")
    holders_line(data)
    lineage_lines(data)
    frame = deltas_frame(data)
    if current and not frame.empty:
        tables.deltas(frame)
        if chart:
            long = pd.concat(
                [
                    pd.DataFrame(
                        {"label": f"current v{current['version']}", "metric": frame["metric"]}
                    ).assign(value=frame["baseline"].to_numpy()),
                    pd.DataFrame(
                        {"label": f"candidate v{data.get('version')}", "metric": frame["metric"]}
                    ).assign(value=frame["value"].to_numpy()),
                ]
            ).dropna()
            charts.across_versions(long, list(frame["metric"]))
    elif not frame.empty:
        st.dataframe(frame[["metric", "value"]], hide_index=True, width="stretch")
    gates(data.get("gates") or [])
    diff = data.get("params_diff") or {}
    if diff:
        with st.expander(f"Params that differ ({len(diff)})"):
            tables.key_values(
                {k: f"{v.get('current')} → {v.get('candidate')}" for k, v in diff.items()}
            )
    summaries(data)


def holders_line(data: Mapping[str, Any]) -> None:
    """For a legacy stage: every version holding it now, and what executing does to them."""
    if data.get("target_kind") != "stage":
        return
    held = [str(v) for v in data.get("current_holders") or []]
    target = escape_markdown(str(data.get("target")))
    if not held:
        st.markdown(f"Nobody holds {target} now.")
        return
    listed = ", ".join(f"v{escape_markdown(v)}" for v in held)
    archive = data.get("archive_existing_versions")
    fate = (
        "executing this request moves them to Archived"
        if archive
        else f"executing this request leaves them in {target}"
    )
    st.markdown(
        f"**{target} is held now by {listed}**: {fate} (policy `archive_existing_versions: "
        f"{str(bool(archive)).lower()}`)."
    )


def lineage_lines(data: Mapping[str, Any]) -> None:
    """Where the candidate (and the current holder) came from: logged model, run, data sets."""
    for role, described in (("Candidate", data.get("candidate")), ("Current", data.get("current"))):
        lineage = (described or {}).get("lineage") or {}
        logged = lineage.get("logged_model")
        if not described or not (logged or lineage.get("datasets")):
            continue
        parts = []
        if logged:
            parts.append(
                f"logged model {logged.get('model_id')} ({logged.get('name') or 'unnamed'})"
            )
            run = logged.get("source_run_id") or described.get("run_id")
            parts.append(f"run {run}" if run else "no run")
            parts.append(f"{len(logged.get('metrics') or [])} model metric(s)")
        sets = lineage.get("datasets") or []
        parts.append(
            f"{len(sets)} data set(s)"
            + (": " + ", ".join(str(d.get("name")) for d in sets[:5]) if sets else "")
        )
        st.caption(
            escape_markdown(f"{role} v{described.get('version')} lineage: " + " → ".join(parts))
        )


def gates(results: Sequence[Mapping[str, Any]]) -> None:
    """Gate results under the policy that applies (all gates pass, or which ones fail)."""
    if not results:
        st.caption("The policy sets no gates for this target.")
        return
    rows = [
        {
            "gate": r.get("gate"),
            "result": "skipped" if r.get("skipped") else "pass" if r.get("passed") else "FAIL",
            "detail": r.get("detail"),
        }
        for r in results
    ]
    failed = [r for r in rows if r["result"] == "FAIL"]
    if failed:
        st.error(f"{len(failed)} gate(s) fail: " + "; ".join(md_escape(r["gate"]) for r in failed))
    else:
        st.success(f"All {len(rows)} gate(s) pass under the policy.")
    st.table(md_table(rows))


def summaries(data: Mapping[str, Any]) -> None:
    drift, importance = data.get("drift"), data.get("importance")
    if drift:
        share = md_escape(drift.get("share_drifted"))
        cols = ", ".join(str(c) for c in drift.get("drifted_columns") or []) or "none"
        st.markdown(
            f"**Drift:** share of drifted columns {share}; drifted: {escape_markdown(cols)}"
        )
    if importance:
        top = ", ".join(f"{f} ({v:.3g})" for f, v in (importance.get("top") or [])[:5])
        st.markdown(f"**Top features:** {escape_markdown(top)}")
    elif drift:
        st.caption("Feature importance: no importance logged for this version.")
    if not drift and not importance:
        st.caption("No drift report, and no importance logged for this version.")


def votes(details: RequestDetails) -> None:
    """Votes so far, each with its signature manifestation."""
    st.markdown(f"**Approvals:** {details.approvals} of {details.quorum} needed")
    if not details.votes:
        st.caption("No votes yet.")
        return
    rows = [
        {
            "signer": v.signer_name or v.approver,
            "decision": v.decision,
            "role": v.role_at_signing,
            "signed at (UTC)": f"{v.signed_at:%Y-%m-%d %H:%M:%S}",
            "re-authentication": v.reauth_method,
            "comment": v.comment,
            "meaning": v.meaning,
        }
        for v in details.votes
    ]
    st.table(md_table(rows))


def reset_notices(details: RequestDetails) -> None:
    """A warning under the votes for each one cast soon after another person reset the
    signer's password or created the signer's account: whoever chose that password knew it."""
    for notice in details.password_resets:
        before = notice.vote.signed_at - notice.reset_at
        hours = int(before.total_seconds() // 3600)
        age = f"{hours // 24} day(s)" if hours >= 24 else f"{hours} hour(s)"
        what = (
            f"The account of **{escape_markdown(notice.user)}** was created"
            if notice.event == "account created"
            else f"The password of **{escape_markdown(notice.user)}** was reset"
        )
        st.warning(
            f"{what} by **{escape_markdown(notice.reset_by)}** on "
            f"{notice.reset_at:%Y-%m-%d %H:%M} UTC, "
            f"{age} before their {escape_markdown(notice.vote.decision)} vote.",
            icon=":material/lock_reset:",
        )


def outcome(details: RequestDetails) -> None:
    """The execution outcome of a decided request."""
    state = details.request.state
    last = details.executions[-1] if details.executions else None
    if state == "executed":
        req = details.request
        st.success(
            f"Executed: {md_escape(req.model)} v{md_escape(req.version)} now holds "
            f"{md_escape(req.target)}."
        )
    elif state == "execution_failed":
        st.error(f"Execution failed: {md_escape(last.detail) if last else 'unknown error'}")
    elif state in ("rejected", "cancelled", "expired", "superseded"):
        st.warning(f"This request is {state}.")


def feed(events: Sequence[ActivityEvent], *, empty: str = "No activity yet.") -> None:
    """Activity as readable lines (not a canvas table), newest first."""
    if not events:
        st.caption(empty)
        return
    lines = []
    for e in events:
        loud = "**" if e.action in LOUD_ACTIONS else ""
        when = e.ts[:19].replace("T", " ")
        lines.append(f"- `#{e.seq}` {when} UTC — {loud}{escape_markdown(e.summary)}{loud}")
    st.markdown("\n".join(lines))


def finding_banner(text: str) -> None:
    """The one loud style of every open finding (out-of-band changes, monitoring alerts)."""
    st.error(text, icon=":material/warning:")


def out_of_band(flags: Sequence[OutOfBandFlag]) -> None:
    """Loud banner for every open out-of-band change; a quieter note for each one put back."""
    how = {"reconcile": "found by reconcile", "mlflow_webhook": "reported by MLflow's webhook"}
    for f in flags:
        found = ", ".join(f"v{md_escape(v)}" for v in f.registry_versions) or "nobody"
        ledger = f"v{md_escape(f.ledger_version)}" if f.ledger_version else "nobody"
        when = f.ts[:19].replace("T", " ")
        name = escape_markdown(f"{f.model} {f.target_kind} {f.target}")
        if f.status == "put_back":
            st.warning(
                f"Out-of-band move put back: {name} had been moved to {found} outside "
                f"Countersign; it is back on {ledger} (entry #{f.seq}, {when} UTC).",
                icon=":material/undo:",
            )
            continue
        source = how.get(f.detected_by, "found")
        finding_banner(
            f"Out-of-band change: {name} is held by {found} in MLflow, but the ledger says "
            f"{ledger} ({source}, entry #{f.seq}, {when} UTC)."
        )


def monitoring_alerts(
    flags: Sequence[MonitoringFlag], close: Callable[[str, str], str] | None = None
) -> None:
    """A banner per open monitoring finding; with `close`, a form to close it with a comment.

    `close(finding_id, comment)` is the one facade call of the form; it returns the message.
    """
    for f in flags:
        finding_banner(
            f"Monitoring alert: {escape_markdown(f.model)} v{escape_markdown(f.version)} "
            f"{md_escape(f.check)} {f.value:.4g} breaks "
            f"{md_escape(f.limit)} for {f.consecutive} batch(es) in a row (latest as of "
            f"{f.as_of:%Y-%m-%d %H:%M} UTC, batch {md_escape(f.batch_id)}; finding {f.id})."
        )
        navigation.link(
            "drift.py",
            f"Open batch {f.batch_id} in Drift",
            query={"model": f.model, "version": f.version, "batch": f.batch_id},
        )
        if close is None:
            continue
        with st.form(f"close_finding_{f.id}", clear_on_submit=True):
            comment = st.text_input(f"Comment closing finding {f.id}", max_chars=4000)
            if st.form_submit_button(f"Close finding {f.id}"):
                try:
                    st.success(md_escape(close(f.id, comment)))
                except (GovernanceError, UserFacingError) as exc:
                    st.error(md_escape(exc))


def open_request_link(req: PromotionRequest) -> None:
    """A real link to the review packet of a request."""
    navigation.link("approvals.py", f"Open {request_title(req)}", query={"request": req.id})


@contextmanager
def secondary(what: str) -> Iterator[None]:
    """A governance panel on a review page: if the ledger cannot be read, say so and go on."""
    try:
        yield
    except (GovernanceError, UserFacingError) as exc:
        st.warning(f"{what} unavailable: {md_escape(exc)}")
