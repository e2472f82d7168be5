"""Caches and the resources bootstrap builds, once per process.

Reads are cached with `st.cache_data` for `settings.cache_ttl_s` seconds, keyed by their
arguments and by the store they read, so a different tracking URI never sees stale entries.
The cache wrappers are made on first use because the TTL comes from Settings, and nothing may
read the environment at import time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import streamlit as st

from app import bootstrap
from app.errors import UserFacingError
from app.settings import Settings, SettingsError

if TYPE_CHECKING:
    from app.facade import GovernanceFacade
    from app.identity import IdentityService
    from app.mlflow_gateway import MlflowGateway

# What a page shows as one line with st.error instead of a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (UserFacingError, SettingsError)

P = ParamSpec("P")
R = TypeVar("R")
_WRAPPERS: dict[str, Callable[..., Any]] = {}


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    """The settings of this process (environment plus .streamlit/secrets.toml).

    Every page asks for the settings first, so this is also where the app process turns
    MLflow's model deserialisation off for good.
    """
    bootstrap.harden_process()
    return Settings.from_env()


@st.cache_resource(show_spinner="Connecting to the MLflow store...")
def get_gateway() -> MlflowGateway:
    """One MLflow gateway per process, built by the composition root."""
    return bootstrap.build_gateway(get_settings())


@st.cache_resource(show_spinner=False)
def get_governance() -> GovernanceFacade:
    """One governance facade per process (the same one the CLI builds per command)."""
    return bootstrap.build_governance(get_settings())


@st.cache_resource(show_spinner=False)
def get_identity() -> IdentityService:
    """Sign-in for this process: the configured mode over the governance accounts."""
    from app.identity import build_identity

    return build_identity(get_settings(), get_governance())


@st.cache_resource(show_spinner=False)
def warm_up() -> Any:
    """Start warming this process once (app.warmup: imports in a background thread).

    Unusable settings start nothing: the sign-in gate shows their message.
    """
    from app import warmup

    try:
        settings = get_settings()
    except SettingsError:
        return None
    return warmup.start(settings)


def clear_caches() -> None:
    """Forget every cached read and resource (after a write, or between tests)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    _WRAPPERS.clear()


def _store_key() -> str:
    settings = get_settings()
    return f"{settings.tracking_uri}|{settings.registry_uri}"


def cached(fn: Callable[P, R]) -> Callable[P, R]:
    """`st.cache_data` with the TTL from Settings, keyed by the store and the arguments."""

    def keyed(store: str, *args: Any) -> Any:
        del store  # part of the cache key only
        return fn(*args)  # type: ignore[call-arg]

    keyed.__qualname__ = keyed.__name__ = f"cached_{fn.__name__}"

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        inner = _WRAPPERS.get(fn.__name__)
        if inner is None:
            ttl = get_settings().cache_ttl_s
            inner = st.cache_data(ttl=ttl, show_spinner="Reading from MLflow...")(keyed)
            _WRAPPERS[fn.__name__] = inner
        return inner(_store_key(), *args)  # type: ignore[no-any-return]

    return wrapper
