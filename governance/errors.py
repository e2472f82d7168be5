"""Domain errors: raised low, translated once, high (`st.error(str(e))`, or one CLI line)."""

from __future__ import annotations


class GovernanceError(Exception):
    """Base class of every refusal the workflow can give. The message is for the user."""

    exit_code = 1


class NotAllowed(GovernanceError):
    """The actor may not do this (role, separation of duties, not the requester...)."""


class AuthenticationFailed(GovernanceError):
    """Unknown user or wrong password: deliberately the same message for both."""

    def __init__(self, message: str = "invalid user name or password") -> None:
        super().__init__(message)


class PasswordChangeRequired(GovernanceError):
    """The password is right, but an admin set it: the person must choose a new one first."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message or "an administrator set your password: choose a new one before you continue"
        )


class SessionEnded(GovernanceError):
    """A browser session no longer admits anyone; `reason` says why, for the sign-in page:
    unknown, idle, absolute, disabled, or the revocation's reason (logout, admin, ...)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or f"the session has ended ({reason})")
        self.reason = reason


class InvalidTransition(GovernanceError):
    """The request is not in a state that allows this action."""


class NotFound(GovernanceError):
    """A request, user, model or version that does not exist."""


class UnknownModel(NotFound):
    """The registry has no such model or version."""


class PolicyError(GovernanceError):
    """The policy file is invalid; the message names the file and the key."""


class GateFailed(GovernanceError):
    """A policy gate does not pass for this request."""


class StaleEvidence(GovernanceError):
    """The evidence changed since the request was made: it must be refreshed before signing."""


class Conflict(GovernanceError):
    """A uniqueness rule was hit (duplicate user, an open request for the same target...)."""


class RegistryUnavailable(GovernanceError):
    """The model registry (MLflow) cannot be reached; the action can be retried."""


class SchemaOutOfDate(GovernanceError):
    """The governance database schema is behind the code."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "the governance database schema is out of date: run `python -m app.cli db upgrade`"
        )


class InvalidInput(GovernanceError):
    """A value given by the user is unusable (empty comment, bad user name...)."""


class DuplicateVote(Conflict):
    """The approver already voted on this request (unique on request and approver)."""


class Tampered(GovernanceError):
    """A stored row or audit entry fails its seal: it was written or changed outside Countersign.

    The message names the record and says what is wrong; the row is never acted on.
    """


UNSEALED_HINT = (
    "those are sealed once by an operator: `python -m app.cli audit seal-existing`, see the "
    "README's Sealed records"
)
