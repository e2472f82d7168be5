"""One typed Settings object. Nothing else in the product reads the environment.

Values come from the process environment first, then from `.streamlit/secrets.toml` (a flat
`[countersign]` table or top-level keys with the same names), then the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from governance.domain import BUILTIN_LOWER_IS_BETTER

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = REPO_ROOT / "governance" / "default_policy.yaml"
# Defaults to the policy's built-in list: one source of truth for metric direction.
DEFAULT_LOWER_IS_BETTER = BUILTIN_LOWER_IS_BETTER
AUTH_MODES = ("local", "oidc", "header")
MODEL_IMPORTANCE_MODES = ("logged", "worker")
MODEL_WORKER_ISOLATIONS = ("namespaces", "limits-only")


class SettingsError(ValueError):
    """A configuration value is present but unusable; the message names the variable."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _load_secrets(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot be read as TOML ({exc})") from exc
    flat: dict[str, str] = {}
    section = data.get("countersign", {})
    for source in (data, section if isinstance(section, dict) else {}):
        for key, value in source.items():
            if isinstance(value, (str, int, float, bool)):
                flat[key.upper()] = str(value)
    return flat


@dataclass(frozen=True)
class Settings:
    """Everything the app, the CLI and the benchmarks may configure."""

    data_dir: Path
    tracking_uri: str
    registry_uri: str
    tracking_uri_from_env: bool
    db_url: str
    policy_path: Path
    auth_mode: str = "local"
    demo_mode: bool = False
    header_auth_enabled: bool = False
    auth_header_name: str = "X-Forwarded-User"
    oidc_unknown_role: str = "viewer"  # "viewer" or "refuse"
    oidc_reauth_minutes: int = 5
    oidc_email_verified_required: bool = True  # False trusts an email sent without the claim
    session_timeout_minutes: int = 30  # idle: a session ends after this long without activity
    session_absolute_minutes: int = 720  # a session ends this long after sign-in, whatever
    cookie_secure: bool = False  # always mark the session cookie Secure (else: when on https)
    reset_notice_days: int = 7  # votes this soon after an admin reset a signer's password
    lockout_attempts: int = 5
    lockout_minutes: int = 15
    signing_key_path: Path | None = None
    upload_max_mb: int = 200
    cache_ttl_s: int = 60
    lower_is_better: tuple[str, ...] = DEFAULT_LOWER_IS_BETTER
    # Outbound webhooks and monitoring. URLs and the secret stay out of repr (and so out of logs):
    # a Slack incoming-webhook URL is itself a credential.
    webhook_urls: tuple[str, ...] = field(default=(), repr=False)
    webhook_secret: str = field(default="", repr=False)
    webhook_max_attempts: int = 8
    webhook_backoff_s: int = 10
    webhook_timeout_s: int = 10
    metrics_verify_interval_s: int = 300
    # Receiving MLflow's own registry webhooks (the ledger as the registry's desired state): the
    # secret MLflow signs every delivery with. Kept out of repr like the outbound secret.
    mlflow_webhook_secret: str = field(default="", repr=False)
    # Trust boundary: model files and size bounds. The app never deserialises a model; "worker"
    # computes importance in a separate, limited process (see app/model_worker).
    model_importance: str = "logged"  # "logged" or "worker"
    model_worker_memory_mb: int = 2048
    model_worker_cpu_s: int = 120
    model_worker_timeout_s: int = 180
    # Hardening: the worker confines itself (namespaces, its own root folder) or refuses to run;
    # "limits-only" is the operator's explicit acceptance of running without that.
    model_worker_isolation: str = "namespaces"
    artifact_max_mb: int = 200
    data_max_rows: int = 2_000_000
    data_max_columns: int = 1_000
    data_max_decoded_mb: int = 512
    report_cache_max_mb: int = 300
    report_jobs_max: int = 16
    url_max_ids: int = 50

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "mlartifacts"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def demo_store_path(self) -> Path:
        return self.data_dir / "mlflow.db"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, secrets_path: Path | None = None
    ) -> Settings:
        """Build settings from the environment and the optional secrets file.

        Args:
            env: The environment to read; defaults to `os.environ`.
            secrets_path: The secrets file; defaults to `.streamlit/secrets.toml` in the repo.

        Raises:
            SettingsError: A value is present but invalid; the message names it.
        """
        source = dict(os.environ if env is None else env)
        secrets = _load_secrets(secrets_path or REPO_ROOT / ".streamlit" / "secrets.toml")

        def get(name: str, default: str = "") -> str:
            value = source.get(name)
            if value is None or value == "":
                value = secrets.get(name, default)
            return value

        def get_int(name: str, default: int) -> int:
            raw = get(name, str(default))
            try:
                return int(raw)
            except ValueError as exc:
                raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc

        data_dir = Path(get("COUNTERSIGN_DATA_DIR", str(REPO_ROOT / "data"))).expanduser()
        data_dir = data_dir.resolve()
        env_tracking = get("MLFLOW_TRACKING_URI")
        # Never let MLflow fall back to ./mlruns: without a configured URI we use the demo store.
        tracking_uri = env_tracking or f"sqlite:///{data_dir / 'mlflow.db'}"
        registry_uri = get("MLFLOW_REGISTRY_URI") or tracking_uri
        auth_mode = get("COUNTERSIGN_AUTH", "local").lower()
        if auth_mode not in AUTH_MODES:
            raise SettingsError(f"COUNTERSIGN_AUTH must be one of {', '.join(AUTH_MODES)}")
        oidc_unknown = get("COUNTERSIGN_OIDC_UNKNOWN", "viewer").lower()
        if oidc_unknown not in {"viewer", "refuse"}:
            raise SettingsError("COUNTERSIGN_OIDC_UNKNOWN must be 'viewer' or 'refuse'")
        key = get("COUNTERSIGN_SIGNING_KEY")
        lower = get("COUNTERSIGN_LOWER_IS_BETTER")
        webhook_secret = get("COUNTERSIGN_WEBHOOK_SECRET")
        secret_file = get("COUNTERSIGN_WEBHOOK_SECRET_FILE")
        if secret_file and not webhook_secret:
            try:
                webhook_secret = Path(secret_file).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    f"COUNTERSIGN_WEBHOOK_SECRET_FILE: cannot read {secret_file} ({exc.strerror})"
                ) from exc
        webhook_urls = get("COUNTERSIGN_WEBHOOK_URLS")
        if get_int("COUNTERSIGN_SESSION_ABSOLUTE_MINUTES", 720) < 1:
            raise SettingsError("COUNTERSIGN_SESSION_ABSOLUTE_MINUTES must be at least 1")
        mlflow_webhook_secret = get("COUNTERSIGN_MLFLOW_WEBHOOK_SECRET")
        mlflow_secret_file = get("COUNTERSIGN_MLFLOW_WEBHOOK_SECRET_FILE")
        if mlflow_secret_file and not mlflow_webhook_secret:
            try:
                path = Path(mlflow_secret_file).expanduser()
                mlflow_webhook_secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    "COUNTERSIGN_MLFLOW_WEBHOOK_SECRET_FILE: cannot read "
                    f"{mlflow_secret_file} ({exc.strerror})"
                ) from exc
        model_importance = get("COUNTERSIGN_MODEL_IMPORTANCE", "logged").strip().lower()
        if model_importance not in MODEL_IMPORTANCE_MODES:
            raise SettingsError("COUNTERSIGN_MODEL_IMPORTANCE must be 'logged' or 'worker'")
        isolation = get("COUNTERSIGN_MODEL_WORKER_ISOLATION", "namespaces").strip().lower()
        if isolation not in MODEL_WORKER_ISOLATIONS:
            raise SettingsError(
                "COUNTERSIGN_MODEL_WORKER_ISOLATION must be 'namespaces' or 'limits-only'"
            )

        def get_limit(name: str, default: int) -> int:
            value = get_int(name, default)
            if value < 1:
                raise SettingsError(f"{name} must be a positive whole number, got {value}")
            return value

        return cls(
            data_dir=data_dir,
            tracking_uri=tracking_uri,
            registry_uri=registry_uri,
            tracking_uri_from_env=bool(env_tracking),
            db_url=get("COUNTERSIGN_DB_URL") or f"sqlite:///{data_dir / 'governance.db'}",
            policy_path=Path(get("COUNTERSIGN_POLICY", str(DEFAULT_POLICY))).expanduser(),
            auth_mode=auth_mode,
            demo_mode=_truthy(get("COUNTERSIGN_DEMO")),
            header_auth_enabled=_truthy(get("COUNTERSIGN_HEADER_AUTH_ENABLED")),
            auth_header_name=get("COUNTERSIGN_AUTH_HEADER", "X-Forwarded-User"),
            oidc_unknown_role=oidc_unknown,
            oidc_reauth_minutes=get_int("COUNTERSIGN_OIDC_REAUTH_MINUTES", 5),
            oidc_email_verified_required=_truthy(
                get("COUNTERSIGN_OIDC_EMAIL_VERIFIED_REQUIRED", "1")
            ),
            session_timeout_minutes=get_int("COUNTERSIGN_SESSION_TIMEOUT_MINUTES", 30),
            session_absolute_minutes=get_int("COUNTERSIGN_SESSION_ABSOLUTE_MINUTES", 720),
            cookie_secure=_truthy(get("COUNTERSIGN_COOKIE_SECURE")),
            reset_notice_days=get_int("COUNTERSIGN_RESET_NOTICE_DAYS", 7),
            lockout_attempts=get_int("COUNTERSIGN_LOCKOUT_ATTEMPTS", 5),
            lockout_minutes=get_int("COUNTERSIGN_LOCKOUT_MINUTES", 15),
            signing_key_path=Path(key).expanduser() if key else None,
            upload_max_mb=get_int("COUNTERSIGN_UPLOAD_MAX_MB", 200),
            cache_ttl_s=get_int("COUNTERSIGN_CACHE_TTL_S", 60),
            lower_is_better=tuple(s.strip().lower() for s in lower.split(",") if s.strip())
            or DEFAULT_LOWER_IS_BETTER,
            webhook_urls=tuple(u.strip() for u in webhook_urls.split(",") if u.strip()),
            webhook_secret=webhook_secret,
            webhook_max_attempts=get_int("COUNTERSIGN_WEBHOOK_MAX_ATTEMPTS", 8),
            webhook_backoff_s=get_int("COUNTERSIGN_WEBHOOK_BACKOFF_S", 10),
            webhook_timeout_s=get_int("COUNTERSIGN_WEBHOOK_TIMEOUT_S", 10),
            metrics_verify_interval_s=get_int("COUNTERSIGN_METRICS_VERIFY_INTERVAL_S", 300),
            mlflow_webhook_secret=mlflow_webhook_secret,
            model_importance=model_importance,
            model_worker_memory_mb=get_limit("COUNTERSIGN_MODEL_WORKER_MEMORY_MB", 2048),
            model_worker_cpu_s=get_limit("COUNTERSIGN_MODEL_WORKER_CPU_S", 120),
            model_worker_timeout_s=get_limit("COUNTERSIGN_MODEL_WORKER_TIMEOUT_S", 180),
            model_worker_isolation=isolation,
            artifact_max_mb=get_limit("COUNTERSIGN_ARTIFACT_MAX_MB", 200),
            data_max_rows=get_limit("COUNTERSIGN_DATA_MAX_ROWS", 2_000_000),
            data_max_columns=get_limit("COUNTERSIGN_DATA_MAX_COLUMNS", 1_000),
            data_max_decoded_mb=get_limit("COUNTERSIGN_DATA_MAX_DECODED_MB", 512),
            report_cache_max_mb=get_limit("COUNTERSIGN_REPORT_CACHE_MAX_MB", 300),
            report_jobs_max=get_limit("COUNTERSIGN_REPORT_JOBS_MAX", 16),
            url_max_ids=get_limit("COUNTERSIGN_URL_MAX_IDS", 50),
        )
