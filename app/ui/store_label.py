"""How a page names a store: kind and host, never a server path or a credential.

The tracking URI can be `sqlite:////srv/countersign/data/mlflow.db` (a path on the server) or
`postgresql://user:secret@db/mlflow` (a password); a reviewer needs neither to know which MLflow
they are looking at.
"""

from __future__ import annotations

from urllib.parse import urlsplit

FILE_SCHEMES = ("sqlite", "file", "")


def store_label(uri: str) -> str:
    """`sqlite:////srv/data/mlflow.db` -> `SQLite database mlflow.db`;
    `postgresql+psycopg://u:pw@db:5432/mlflow` -> `postgresql://db:5432/mlflow`;
    `https://user:pw@mlflow.example.com/` -> `https://mlflow.example.com/`."""
    try:
        parts = urlsplit(uri.strip())
        port = parts.port
    except ValueError:
        return "a store whose address cannot be shown"
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme in FILE_SCHEMES or len(scheme) == 1:  # `C:\\...` parses with scheme "c"
        name = (parts.path or uri).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        kind = "SQLite database" if scheme == "sqlite" else "file store"
        return f"{kind} {name}" if name else kind
    host = parts.hostname or ""
    where = f"{host}:{port}" if port else host
    return f"{scheme}://{where}{parts.path}"
