"""Serves the test OpenID Connect provider (tests/oidc_provider.py) over HTTP on 127.0.0.1, and
writes the secrets.toml that points Streamlit's `st.login` at it.

The standard library's threading HTTP server runs in a thread of the test process, on a free port.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.oidc_provider import OidcProvider, OidcProviderError, with_query


def _flat(query: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: what matters is kept on the provider."""

    def do_GET(self) -> None:
        provider = self.server.provider
        url = urlsplit(self.path)
        if url.path == "/.well-known/openid-configuration":
            self._json(200, provider.discovery())
        elif url.path == "/jwks":
            self._json(200, provider.jwks())
        elif url.path == "/authorize":
            self._authorize(_flat(url.query))
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        provider = self.server.provider
        length = int(self.headers.get("Content-Length") or 0)
        form = _flat(self.rfile.read(length).decode("utf-8"))
        path = urlsplit(self.path).path
        try:
            if path == "/token":
                answer = provider.exchange(form, self.headers.get("Authorization", ""))
                self._json(200, answer)
            elif path == "/authorize" and form.get("deny"):
                self._redirect(provider.deny(form.get("ticket", "")))
            elif path == "/authorize":
                self._redirect(provider.approve(form.get("ticket", ""), form.get("sub", "")))
            else:
                self._json(404, {"error": "not_found"})
        except OidcProviderError as exc:
            self._json(exc.status, {"error": exc.error, "error_description": exc.description})

    def _authorize(self, query: dict[str, str]) -> None:
        provider = self.server.provider
        try:
            ticket = provider.begin(query)
        except OidcProviderError as exc:
            known = query.get("client_id") == provider.client_id
            if known and query.get("redirect_uri") in provider.redirect_uris:
                params = {"error": exc.error, "error_description": exc.description}
                back = with_query(query["redirect_uri"], **params, state=query.get("state", ""))
                self._redirect(back)
            else:  # never redirect for an unknown client or to an unregistered URI
                self._page(400, f"<p>{html.escape(exc.description)}</p>")
            return
        if provider.auto_approve is not None:
            self._redirect(provider.approve(ticket, provider.auto_approve))
        else:
            self._page(200, provider.form(ticket))

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _page(self, status: int, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, provider: OidcProvider) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.provider = provider


@contextmanager
def serve_provider(provider: OidcProvider) -> Iterator[OidcProvider]:
    """Serve `provider` on a free 127.0.0.1 port in a thread until the block ends."""
    server = _Server(provider)
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="oidc-provider", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def write_auth_secrets(path: Path, provider: OidcProvider, **client_kwargs: str) -> Path:
    """Write a secrets.toml whose [auth] section points Streamlit's `st.login` at `provider`.

    The redirect URI keeps Streamlit's `{port}` placeholder, so the file is written before the
    app's port is known; register the resolved URI with the provider once the app is up.
    """
    lines = [
        "[auth]",
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"',
        f'cookie_secret = "{secrets.token_urlsafe(32)}"',
        f'client_id = "{provider.client_id}"',
        f'client_secret = "{provider.client_secret}"',
        f'server_metadata_url = "{provider.metadata_url}"',
    ]
    if client_kwargs:
        lines.append("[auth.client_kwargs]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in client_kwargs.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
