"""Errors the read side raises for the user to see: one clear line, never a traceback.

Pages show `str(error)` with `st.error`; the CLI prints it and exits non-zero.
"""


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


class StoreSchemaMismatch(StoreUnavailable):
    """The SQL store is at another MLflow schema revision: opening it through MLflow would
    migrate it, so Countersign does not (the message has both revisions and the ways forward)."""
