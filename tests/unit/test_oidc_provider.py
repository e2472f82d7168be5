"""The test OpenID Connect provider refuses what a real one refuses, over real HTTP on 127.0.0.1.

The browser tests trust it to check the client, the redirect URI, one-time codes and PKCE; these
tests make sure it does, without a browser.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.oidc_provider import OidcProvider, Person
from tests.oidc_server import serve_provider

REDIRECT = "http://127.0.0.1:9/oauth2callback"
ANN = Person("sub-ann", "ann@example.org", "Ann")
VERIFIER = "a-long-enough-code-verifier-of-forty-three-characters-at-least"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    with serve_provider(OidcProvider([ANN], redirect_uris=[REDIRECT])) as provider:
        yield provider


def call(url: str, form: dict[str, str] | None = None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    data = urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310
    try:
        return OPENER.open(request, timeout=10)
    except urllib.error.HTTPError as exc:
        return exc


def challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(idp: OidcProvider, **overrides: str) -> dict[str, str]:
    """Approve Ann for one authorization request; the query of the redirect back."""
    query = {
        "client_id": idp.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid email",
        "state": "st-1",
        "nonce": "n-1",
        "code_challenge": challenge(VERIFIER),
        "code_challenge_method": "S256",
    } | overrides
    idp.auto_approve = ANN.sub
    answer = call(f"{idp.issuer}/authorize?{urlencode(query)}")
    assert answer.status == 302, answer.read()
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token(idp: OidcProvider, code: str, overrides: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": idp.client_id,
        "client_secret": idp.client_secret,
    } | (overrides or {})
    return call(f"{idp.issuer}/token", form)


def test_a_code_becomes_an_rs256_id_token_that_the_published_key_verifies(
    idp: OidcProvider,
) -> None:
    metadata = json.load(call(idp.metadata_url))
    assert metadata["issuer"] == idp.issuer
    back = authorize(idp)
    assert back["state"] == "st-1"
    answer = token(idp, back["code"])
    assert answer.status == 200
    id_token = json.load(answer)["id_token"]
    keys = KeySet.import_key_set(json.load(call(metadata["jwks_uri"])))
    claims = jwt.decode(id_token, keys, algorithms=["RS256"]).claims
    assert claims["iss"] == idp.issuer
    assert (claims["sub"], claims["email"], claims["aud"]) == (ANN.sub, ANN.email, idp.client_id)
    assert claims["nonce"] == "n-1"
    assert claims["auth_time"] <= claims["iat"] < claims["exp"]


def test_http_basic_client_authentication_is_accepted(idp: OidcProvider) -> None:
    code = authorize(idp)["code"]
    basic = base64.b64encode(f"{idp.client_id}:{idp.client_secret}".encode()).decode()
    answer = call(
        f"{idp.issuer}/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        | {"code_verifier": VERIFIER},
        {"Authorization": f"Basic {basic}"},
    )
    assert answer.status == 200
    assert idp.token_requests[-1]["auth_method"] == "client_secret_basic"


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"code_verifier": VERIFIER[::-1]}, 400, "invalid_grant"),
        ({"code_verifier": ""}, 400, "invalid_grant"),
        ({"redirect_uri": "http://127.0.0.1:9/elsewhere"}, 400, "invalid_grant"),
        ({"code": "made-up"}, 400, "invalid_grant"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
def test_a_bad_code_exchange_is_refused(
    idp: OidcProvider, overrides: dict[str, str], status: int, error: str
) -> None:
    answer = token(idp, authorize(idp)["code"], overrides)
    assert (answer.status, json.load(answer)["error"]) == (status, error)


def test_a_code_is_exchanged_once(idp: OidcProvider) -> None:
    code = authorize(idp)["code"]
    assert token(idp, code).status == 200
    assert json.load(token(idp, code))["error"] == "invalid_grant"


def test_an_unregistered_redirect_uri_is_never_redirected_to(idp: OidcProvider) -> None:
    query = {"client_id": idp.client_id, "redirect_uri": "http://127.0.0.1:9/evil"}
    answer = call(f"{idp.issuer}/authorize?{urlencode(query | {'response_type': 'code'})}")
    assert answer.status == 400
    assert "Location" not in answer.headers


def test_a_request_without_the_openid_scope_is_sent_back_with_an_error(
    idp: OidcProvider,
) -> None:
    back = authorize(idp, scope="email")
    assert (back["error"], back["state"]) == ("invalid_scope", "st-1")
    assert "code" not in back


def test_the_form_lists_the_people_and_signs_in_the_one_picked(idp: OidcProvider) -> None:
    idp.auto_approve = None
    query = {"client_id": idp.client_id, "redirect_uri": REDIRECT, "response_type": "code"}
    page = call(f"{idp.issuer}/authorize?{urlencode(query | {'scope': 'openid', 'state': 's'})}")
    text = page.read().decode()
    assert "Sign in as ann@example.org" in text
    ticket = text.split('name="ticket" value="')[1].split('"')[0]
    answer = call(f"{idp.issuer}/authorize", {"ticket": ticket, "sub": ANN.sub})
    assert answer.status == 302
    assert "code=" in answer.headers["Location"]
    again = call(f"{idp.issuer}/authorize", {"ticket": ticket, "sub": ANN.sub})
    assert json.load(again)["error"] == "invalid_request"  # a ticket serves one sign-in
