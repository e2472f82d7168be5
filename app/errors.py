"""Errors the read side raises for the user to see: one clear line, never a traceback.

Pages show `message_of(error)` with `st.error`; the CLI prints it and exits non-zero.
"""


def message_of(exc: BaseException) -> str:
    """The one line a person sees for an error, without any password a URI in it carried."""
    # Imported here: the model worker's child process imports this module and nothing of
    # governance/ (it runs with the repository's packages out of reach).
    from governance.redaction import redact_secrets

    return redact_secrets(str(exc) or type(exc).__name__)


class UserFacingError(Exception):
    """Base class: the message is written for the person using the product."""


class StoreUnavailable(UserFacingError):
    """The MLflow tracking or registry store cannot be reached or read."""


class InvalidQuery(UserFacingError):
    """A filter string, sort key or other query the user typed is not valid."""


class NotFound(UserFacingError):
    """An experiment, run, model or version that does not exist."""


class InvalidInput(UserFacingError):
    """An upload or a parameter that cannot be used (wrong format, too large, empty...)."""


class LimitExceeded(InvalidInput):
    """Data, an artifact or a request is larger than a configured bound; the message names
    the limit and the setting that raises it."""


class ArtifactsUnreachable(UserFacingError):
    """The version exists, but its artifact store cannot be read from this server (a path on
    another machine, an artifact server that does not answer)."""

    def __init__(self, uri: str, detail: str = "") -> None:
        self.uri = uri
        message = f"artifacts of this version are not reachable from this server: {uri}"
        super().__init__(f"{message} ({detail})" if detail else message)


class ImportanceNotLogged(UserFacingError):
    """The version logged no feature importance, and computing it from the model is off."""


class StoreSchemaMismatch(StoreUnavailable):
    """The SQL store is at another MLflow schema revision: opening it through MLflow would
    migrate it, so Countersign does not (the message has both revisions and the ways forward)."""
