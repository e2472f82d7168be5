"""The session cookie endpoints over a real governance database, through Starlette's client.

What a browser cannot show in a test: a request from another origin, a replayed grant, the
`Secure` flag behind an https proxy, the cookie scoped to Streamlit's base URL path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from app.web import routes, session_cookie
from tests.e2e.identity_env import ACCOUNTS, build_governance_db

HOST = "countersign.test"
PASSWORD = dict((n, p) for n, _, p in ACCOUNTS)["vic"]
SAME = {"X-Countersign-Session": "1", "Origin": f"http://{HOST}"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_governance_db(tmp_path_factory.mktemp("cookie-endpoint"))


@pytest.fixture
def facade(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    session_cookie._built.clear()
    _, built = session_cookie._facade()
    yield built
    built.dispose()
    session_cookie._built.clear()


def client(base_url_path: str = "") -> TestClient:
    return TestClient(Starlette(routes=routes(base_url_path)), base_url=f"http://{HOST}")


def grant(facade: Any) -> str:
    return str(facade.start_session("vic", PASSWORD, "pytest")[2])


def test_a_grant_becomes_an_httponly_lax_cookie_once(facade: Any) -> None:
    given = grant(facade)
    response = client().post("/_countersign/session", content=given, headers=SAME)
    assert response.status_code == 204
    cookie = response.headers["set-cookie"]
    secret = cookie.split(";")[0].split("=", 1)[1]
    assert cookie.startswith("countersign_session=")
    for part in ("HttpOnly", "Path=/", "SameSite=lax", "Max-Age=431"):
        assert part in cookie
    assert "Secure" not in cookie
    assert response.headers["cache-control"] == "no-store"
    session, user = facade.resume_session(secret)
    assert user.name == "vic"
    assert session.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    replayed = client().post("/_countersign/session", content=given, headers=SAME)
    assert replayed.status_code == 400
    assert "set-cookie" not in replayed.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": f"http://{HOST}"},  # without the app's header
        {"X-Countersign-Session": "1", "Origin": "http://evil.example"},
        {"X-Countersign-Session": "1", "Origin": "null"},
        {"X-Countersign-Session": "1", "Sec-Fetch-Site": "cross-site"},
        {"X-Countersign-Session": "1"},  # neither Origin nor Sec-Fetch-Site
    ],
)
def test_another_site_cannot_hand_its_grant_to_the_browser(
    facade: Any, headers: dict[str, str]
) -> None:
    given = grant(facade)
    response = client().post("/_countersign/session", content=given, headers=headers)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    # The grant was not spent: the real page can still collect its cookie.
    assert client().post("/_countersign/session", content=given, headers=SAME).status_code == 204


def test_without_an_origin_a_same_origin_fetch_is_accepted(facade: Any) -> None:
    headers = {"X-Countersign-Session": "1", "Sec-Fetch-Site": "same-origin"}
    response = client().post("/_countersign/session", content=grant(facade), headers=headers)
    assert response.status_code == 204


def test_behind_an_https_proxy_the_cookie_is_secure(facade: Any) -> None:
    headers = {**SAME, "X-Forwarded-Proto": "https"}
    response = client().post("/_countersign/session", content=grant(facade), headers=headers)
    assert "Secure" in response.headers["set-cookie"]


def test_the_cookie_lives_under_streamlits_base_url_path(facade: Any) -> None:
    scoped = client("/countersign/")
    assert scoped.post("/_countersign/session", content="x", headers=SAME).status_code == 404
    response = scoped.post("/countersign/_countersign/session", content=grant(facade), headers=SAME)
    assert "Path=/countersign" in response.headers["set-cookie"]


def test_an_oversized_or_unknown_grant_is_refused_in_one_line(facade: Any) -> None:
    huge = client().post("/_countersign/session", content="x" * 10_000, headers=SAME)
    assert huge.status_code == 413
    unknown = client().post("/_countersign/session", content="no-such-grant", headers=SAME)
    assert (unknown.status_code, unknown.text) == (
        400,
        "this sign-in can no longer be handed to the browser: sign in again",
    )


def test_the_end_endpoint_clears_the_cookie_for_this_origin_only(facade: Any) -> None:
    cleared = client().post("/_countersign/session/end", headers=SAME)
    assert cleared.status_code == 204
    cookie = cleared.headers["set-cookie"]
    assert cookie.startswith('countersign_session="";') or "countersign_session=;" in cookie
    assert "Max-Age=0" in cookie
    forged = client().post("/_countersign/session/end", headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403


def test_the_endpoints_are_plain_starlette_routes_under_the_base_path() -> None:
    assert [r.path for r in routes("")] == ["/_countersign/session", "/_countersign/session/end"]
