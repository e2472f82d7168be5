"""The session cookie: set by the server, HttpOnly, never readable by the page's scripts.

Streamlit talks to the browser over a websocket, which cannot set a cookie, so two small HTTP
endpoints do it, same-origin only:

- `POST {base}/_countersign/session` with a session's one-time grant as the body (the signed-in
  page posts it right after the password check): the grant is exchanged, once, for a fresh
  random secret (only its SHA-256 is stored) and answered with
  `Set-Cookie: countersign_session=SECRET; HttpOnly; SameSite=Lax; Path=/` (plus `Secure` on
  https, or with COUNTERSIGN_COOKIE_SECURE=1), living until the session's absolute end.
- `POST {base}/_countersign/session/end` answers with the cookie cleared (after "Log out",
  which already ended the session server-side).

Both refuse a request without the header `X-Countersign-Session: 1` and whose `Origin` (or,
without one, `Sec-Fetch-Site`) is not this server's: another site cannot post a grant of its
own (login CSRF), and a custom header needs a CORS preflight, which is never answered.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from app.facade import GovernanceFacade
    from app.settings import Settings

from app.entities import (
    SESSION_COOKIE as COOKIE,
    SESSION_END_PATH as END_PATH,
    SESSION_HEADER as HEADER,
    SESSION_ISSUE_PATH as ISSUE_PATH,
)

MAX_BODY = 256  # a grant is 43 characters

_lock = threading.Lock()
_built: dict[str, Any] = {}


def _facade() -> tuple[Settings, GovernanceFacade]:
    """One settings object and governance facade for these endpoints, built on first use."""
    with _lock:
        if not _built:
            from app.bootstrap import build_governance
            from app.settings import Settings

            settings = Settings.from_env()
            _built.update(settings=settings, facade=build_governance(settings))
        return _built["settings"], _built["facade"]


def prefix(base_url_path: str) -> str:
    """Streamlit's `server.baseUrlPath` as `/prefix`, or "" when the app is served at `/`."""
    base = (base_url_path or "").strip("/")
    return f"/{base}" if base else ""


def routes(base_url_path: str = "") -> list[BaseRoute]:
    """The two cookie endpoints under Streamlit's base URL path; the cookie is scoped to it."""
    from starlette.routing import Route

    base = prefix(base_url_path)
    cookie_path = base or "/"

    async def issue_here(request: Request) -> Response:
        return await issue(request, cookie_path)

    async def clear_here(request: Request) -> Response:
        return await clear(request, cookie_path)

    return [
        Route(f"{base}/{ISSUE_PATH}", issue_here, methods=["POST"]),
        Route(f"{base}/{END_PATH}", clear_here, methods=["POST"]),
    ]


def same_origin(headers: Any) -> bool:
    """Whether a request comes from a page of this server, with the app's own header."""
    if headers.get(HEADER) != "1":
        return False
    origin = headers.get("origin")
    if origin:
        return bool(urlsplit(origin).netloc) and urlsplit(origin).netloc == headers.get("host")
    return headers.get("sec-fetch-site") == "same-origin"


def _secure(request: Request, settings: Settings) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return settings.cookie_secure or request.url.scheme == "https" or forwarded == "https"


def _plain(status: int, text: str) -> Response:
    from starlette.responses import PlainTextResponse, Response

    if not text:
        return Response(status_code=status, headers={"Cache-Control": "no-store"})
    return PlainTextResponse(text, status_code=status, headers={"Cache-Control": "no-store"})


async def issue(request: Request, cookie_path: str = "/") -> Response:
    """Exchange a one-time grant for the session cookie."""
    from starlette.concurrency import run_in_threadpool

    from governance.errors import GovernanceError

    if not same_origin(request.headers):
        return _plain(403, "forbidden")
    body = await request.body()
    if len(body) > MAX_BODY:
        return _plain(413, "too large")
    settings, facade = _facade()
    try:
        session, secret = await run_in_threadpool(
            facade.claim_cookie, body.decode("ascii", "replace").strip()
        )
    except GovernanceError as exc:
        return _plain(400, str(exc))
    response = _plain(204, "")
    lifetime = int((session.expires_at - datetime.now(UTC)).total_seconds())
    response.set_cookie(
        COOKIE,
        secret,
        max_age=max(lifetime, 0),
        path=cookie_path,
        secure=_secure(request, settings),
        httponly=True,
        samesite="lax",
    )
    return response


async def clear(request: Request, cookie_path: str = "/") -> Response:
    """Clear the session cookie (the session itself was ended by "Log out")."""
    if not same_origin(request.headers):
        return _plain(403, "forbidden")
    response = _plain(204, "")
    response.delete_cookie(COOKIE, path=cookie_path, httponly=True, samesite="lax")
    return response
