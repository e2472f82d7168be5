"""A small but real OpenID Connect provider for the browser tests, served on 127.0.0.1.

It speaks the authorization-code flow that Streamlit's `st.login` (Authlib) uses: discovery at
/.well-known/openid-configuration, /authorize (a tiny HTML form to pick who signs in, or an
automatic approval of one configured person), /token (client secret, exact redirect URI, one-time
codes, PKCE S256) answering an RS256 ID token signed with a key made at start, and /jwks. The
standard library serves it in a thread of the test process (tests/oidc_server.py); nothing
leaves the machine.

What the provider received is kept (`authorizations`, `token_requests`, `id_tokens`) so that
tests can check what the app asked for, not only what it shows.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_TTL_S = 60
TOKEN_TTL_S = 600


@dataclass(frozen=True)
class Person:
    """Someone who can sign in at the provider."""

    sub: str
    email: str = ""
    name: str = ""


@dataclass
class _Authorization:
    """One /authorize request, from the form to the exchange of its code."""

    redirect_uri: str
    state: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    person: Person | None = None
    auth_time: int = 0
    issued_at: float = 0.0


class OidcProviderError(Exception):
    """An OAuth error answered to the client: `error` is the protocol's error code."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass
class OidcProvider:
    """The provider's state: one confidential client, the people, the key, what was received.

    Args:
        people: Who may sign in.
        client_id: The one registered client.
        client_secret: Its secret (client_secret_basic or client_secret_post).
        redirect_uris: The registered redirect URIs (exact match); `register` adds one.
    """

    people: Sequence[Person]
    client_id: str = "countersign"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uris: list[str] = field(default_factory=list)
    # The sub of a person approved at once, without the form; None shows the form.
    auto_approve: str | None = None
    # How long before this authorization the person authenticated (an older session).
    auth_lag_s: int = 0
    issuer: str = ""
    authorizations: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    id_tokens: list[dict[str, Any]] = field(default_factory=list)
    _key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(
            2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True
        )
    )
    _pending: dict[str, _Authorization] = field(default_factory=dict)
    _codes: dict[str, _Authorization] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, redirect_uri: str) -> None:
        """Register one more redirect URI of the client."""
        self.redirect_uris.append(redirect_uri)

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider metadata."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "email"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    # -- /authorize ---------------------------------------------------------------------------

    def begin(self, query: dict[str, str]) -> str:
        """Check an authorization request; returns the ticket that the form or approval uses.

        Raises:
            OidcProviderError: The client or redirect URI is unknown (never redirected to), or
                the request is malformed (the caller redirects back with the error).
        """
        self.authorizations.append(dict(query))
        if query.get("client_id") != self.client_id:
            raise OidcProviderError("unauthorized_client", "unknown client_id")
        if query.get("redirect_uri") not in self.redirect_uris:
            raise OidcProviderError("invalid_request", "redirect_uri is not registered")
        auth = _Authorization(
            redirect_uri=query["redirect_uri"],
            state=query.get("state", ""),
            nonce=query.get("nonce", ""),
            code_challenge=query.get("code_challenge", ""),
            code_challenge_method=query.get("code_challenge_method", ""),
        )
        if query.get("response_type") != "code":
            raise OidcProviderError("unsupported_response_type", "only code is supported")
        if "openid" not in query.get("scope", "").split():
            raise OidcProviderError("invalid_scope", "the openid scope is required")
        if auth.code_challenge and auth.code_challenge_method != "S256":
            raise OidcProviderError("invalid_request", "only S256 code challenges are accepted")
        ticket = secrets.token_urlsafe(16)
        with self._lock:
            self._pending[ticket] = auth
        return ticket

    def approve(self, ticket: str, sub: str) -> str:
        """The person `sub` signed in for the pending request `ticket`: the redirect back."""
        with self._lock:
            auth = self._pending.pop(ticket, None)
        person = next((p for p in self.people if p.sub == sub), None)
        if auth is None or person is None:
            raise OidcProviderError("invalid_request", "unknown sign-in request or person")
        auth.person = person
        auth.auth_time = int(time.time()) - self.auth_lag_s
        auth.issued_at = time.monotonic()
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = auth
        return with_query(auth.redirect_uri, code=code, state=auth.state)

    def deny(self, ticket: str) -> str:
        """The person cancelled at the provider: the redirect back with access_denied."""
        with self._lock:
            auth = self._pending.pop(ticket, None)
        if auth is None:
            raise OidcProviderError("invalid_request", "unknown sign-in request")
        return with_query(auth.redirect_uri, error="access_denied", state=auth.state)

    # -- /token -------------------------------------------------------------------------------

    def exchange(self, form: dict[str, str], authorization: str) -> dict[str, Any]:
        """Exchange a code for tokens (client authentication, redirect URI, PKCE checked)."""
        client_id, client_secret, method = _client_credentials(form, authorization)
        self.token_requests.append({**form, "auth_method": method})
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            raise OidcProviderError("invalid_client", "client authentication failed", 401)
        if form.get("grant_type") != "authorization_code":
            raise OidcProviderError("unsupported_grant_type", "only authorization_code")
        with self._lock:
            auth = self._codes.pop(form.get("code", ""), None)  # a code is used at most once
        if auth is None or auth.person is None:
            raise OidcProviderError("invalid_grant", "unknown or used code")
        if time.monotonic() - auth.issued_at > CODE_TTL_S:
            raise OidcProviderError("invalid_grant", "the code expired")
        if form.get("redirect_uri") != auth.redirect_uri:
            raise OidcProviderError("invalid_grant", "redirect_uri differs from /authorize")
        if auth.code_challenge and _s256(form.get("code_verifier", "")) != auth.code_challenge:
            raise OidcProviderError("invalid_grant", "PKCE code_verifier does not match")
        return {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_S,
            "scope": "openid email profile",
            "id_token": self._id_token(auth),
        }

    def _id_token(self, auth: _Authorization) -> str:
        assert auth.person is not None
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": auth.person.sub,
            "aud": self.client_id,
            "azp": self.client_id,
            "iat": now,
            "exp": now + TOKEN_TTL_S,
            "auth_time": auth.auth_time,
        }
        if auth.nonce:
            claims["nonce"] = auth.nonce
        if auth.person.email:
            claims |= {"email": auth.person.email, "email_verified": True}
        if auth.person.name:
            claims["name"] = auth.person.name
        self.id_tokens.append(claims)
        return jwt.encode({"alg": "RS256", "kid": self._key.kid}, claims, self._key)

    # -- the form -----------------------------------------------------------------------------

    def form(self, ticket: str) -> str:
        buttons = "".join(
            f'<p><button name="sub" value="{html.escape(p.sub)}">Sign in as '
            f"{html.escape(p.email or p.sub)}</button></p>"
            for p in self.people
        )
        return (
            "<!doctype html><html><head><title>Test identity provider</title></head><body>"
            "<h1>Test identity provider</h1>"
            f'<form method="post" action="/authorize"><input type="hidden" name="ticket" '
            f'value="{html.escape(ticket)}">{buttons}'
            '<p><button name="deny" value="1">Cancel</button></p></form></body></html>'
        )


def with_query(url: str, **params: str) -> str:
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _client_credentials(form: dict[str, str], authorization: str) -> tuple[str, str, str]:
    """(client_id, client_secret, method) from HTTP Basic or from the form body."""
    if authorization.lower().startswith("basic "):
        raw = base64.b64decode(authorization[6:]).decode("utf-8")
        client_id, _, client_secret = raw.partition(":")
        return unquote(client_id), unquote(client_secret), "client_secret_basic"
    return form.get("client_id", ""), form.get("client_secret", ""), "client_secret_post"
