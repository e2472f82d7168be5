"""The page list, as data: one PageSpec per page file under pages/.

Other features add their page with one line in PAGES; only pages whose file exists are shown,
so a line may land before its page does. `roles` empty means every signed-in user may open the
page; the identity layer filters with `visible_pages(roles=...)`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from governance.domain import AUTHORISATION_MATRIX, Permission, is_allowed

PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"


@dataclass(frozen=True)
class PageSpec:
    file: str  # file name under pages/, e.g. "models.py" (a contract other issues rely on)
    title: str
    icon: str
    section: str
    roles: tuple[str, ...] = ()  # empty: everyone who may use the app
    default: bool = False
    permission: Permission | None = None  # also open to policy roles granting it (e.g. `risk`)

    @property
    def url_path(self) -> str:
        return Path(self.file).stem

    @property
    def path(self) -> Path:
        return PAGES_DIR / self.file


def roles_for(permission: Permission) -> tuple[str, ...]:
    """The roles that may open a page guarded by `permission` (the authorisation matrix)."""
    return tuple(sorted(AUTHORISATION_MATRIX[permission]))


PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview.py", "Overview", ":material/dashboard:", "Review", default=True),
    PageSpec("experiments.py", "Experiments", ":material/science:", "Review"),
    PageSpec("compare_runs.py", "Compare runs", ":material/difference:", "Review"),
    PageSpec("models.py", "Models", ":material/inventory_2:", "Review"),
    PageSpec("compare_versions.py", "Compare versions", ":material/compare_arrows:", "Review"),
    PageSpec("drift.py", "Drift", ":material/ssid_chart:", "Monitoring"),
    PageSpec("feature_importance.py", "Feature importance", ":material/bar_chart:", "Monitoring"),
    PageSpec("monitoring.py", "Monitoring over time", ":material/monitoring:", "Monitoring"),
    PageSpec(
        "promotions.py",
        "Promotions",
        ":material/rocket_launch:",
        "Governance",
        roles_for(Permission.REQUEST),
    ),
    PageSpec(
        "approvals.py",
        "Approvals",
        ":material/task_alt:",
        "Governance",
        roles_for(Permission.SIGN),
        permission=Permission.SIGN,
    ),
    PageSpec(
        "audit.py",
        "Audit log",
        ":material/history_edu:",
        "Governance",
        roles_for(Permission.READ_AUDIT),
    ),
    PageSpec(
        "admin.py",
        "Admin",
        ":material/admin_panel_settings:",
        "Administration",
        roles_for(Permission.ADMIN_USERS),
    ),
)


def visible_pages(
    roles: Collection[str] | None = None, pages: Iterable[PageSpec] = PAGES
) -> list[PageSpec]:
    """Pages whose file exists and, when `roles` is given, that one of these roles may open
    (a policy-defined approver role such as `risk` opens the pages its permissions grant)."""
    from app.ui.guard import policy_signer_roles

    def allowed(spec: PageSpec) -> bool:
        if roles is None or not spec.roles or set(spec.roles) & set(roles):
            return True
        held = tuple(roles)
        return spec.permission is not None and is_allowed(
            held, spec.permission, policy_signer_roles(held)
        )

    return [spec for spec in pages if spec.path.is_file() and allowed(spec)]


def page(spec: PageSpec, *, hidden: bool = False) -> st.Page:
    return st.Page(
        str(spec.path),
        title=spec.title,
        icon=spec.icon,
        url_path=spec.url_path,
        default=spec.default,
        visibility="hidden" if hidden else "visible",
    )


def sections(
    specs: Iterable[PageSpec], hidden: Collection[str] = ()
) -> Mapping[str, list[st.Page]]:
    """The mapping `st.navigation` takes: section title -> pages, in PAGES order.

    Pages whose file is in `hidden` stay registered (so a URL to them runs the page, whose guard
    says which role it needs) but are left out of the menu.
    """
    grouped: dict[str, list[st.Page]] = {}
    for spec in specs:
        grouped.setdefault(spec.section, []).append(page(spec, hidden=spec.file in hidden))
    return grouped


def link(file: str, label: str, *, query: Mapping[str, str] | None = None, icon: str = "") -> None:
    """A real link to another page with a selection in its query string.

    Uses `st.page_link` when the page is registered with the navigation; otherwise (a page run
    on its own, or a page the user's role cannot open) a plain relative link with the same URL.
    `label` is plain text (it often holds a model name): it is escaped here.
    """
    from app.ui.text import md_escape

    label = md_escape(label)
    spec = next((s for s in PAGES if s.file == file), None)
    url_path = spec.url_path if spec else Path(file).stem
    try:
        st.page_link(
            f"../pages/{file}", label=label, query_params=dict(query or {}), icon=icon or None
        )
    except st.errors.StreamlitAPIException:
        from urllib.parse import urlencode

        target = url_path + (f"?{urlencode(dict(query))}" if query else "")
        st.markdown(f"[{label}]({target})")


def go(file: str, query: Mapping[str, str]) -> None:
    """Open another page with a selection in its URL; where the page is not registered with
    the navigation (a page run on its own), show a link to it instead."""
    try:
        st.switch_page(f"../pages/{file}", query_params=dict(query))
    except st.errors.StreamlitAPIException:
        link(file, f"Open {Path(file).stem}", query=query)


def is_available(file: str) -> bool:
    """Whether a page file exists (a feature that has not landed yet has no page)."""
    return (PAGES_DIR / file).is_file()
