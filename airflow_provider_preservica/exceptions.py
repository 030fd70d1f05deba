"""Errors raised by the provider.

Every message says what is wrong and how to fix it, and never contains a password, a 2FA secret or
an access token: callers may log or show these messages anywhere.
"""

from __future__ import annotations


class PreservicaError(Exception):
    """Base class of every error this provider raises.

    ``retryable`` says whether another try of the task may succeed: False where a retry would only repeat
    the harm (``task_errors`` turns such errors into Airflow's "fail without retries").
    """

    retryable: bool = True


class PreservicaConfigError(PreservicaError):
    """Connection, ini file or argument is missing or malformed; fix the configuration and retry."""


class UnsafeInputError(PreservicaConfigError):
    """Input from elsewhere was refused: a DTD in a fragment, a file outside its folder, a size over the cap.

    ``problem`` says what is wrong and ``fix`` what to do; the message is both.
    """

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}; {fix}")


class InsecureTransportError(PreservicaConfigError):
    """Credentials would travel over plain http to a host that is not loopback."""


class PreservicaRedirectError(PreservicaConfigError):
    """The server redirected a request carrying credentials or a token off the Connection's origin (or to
    plain http); it was not followed. The message names the origin and how to fix the Connection."""


class PreservicaAuthError(PreservicaError):
    """Preservica refused to authorise the work (credentials, a token, an upload's temporary keys)."""


class PreservicaLoginRejectedError(PreservicaAuthError):
    """Preservica refused the login itself: wrong user, password or tenant, locked account, 2FA not set up.

    Not retryable: each try is one more failed login, and real Preservica accounts lock after a few.
    """

    retryable = False


class PreservicaTwoFactorRejectedError(PreservicaLoginRejectedError):
    """Preservica refused the 2FA code (or the seed it is made from is missing or malformed)."""


class PreservicaTokenRejectedError(PreservicaAuthError):
    """A freshly issued token was rejected too: retrying would only loop."""


class PreservicaConnectionError(PreservicaError):
    """The server could not be reached (DNS, refused, TLS, timeout) after the configured retries."""


class PreservicaHTTPError(PreservicaError):
    """Preservica answered with an error status that retries did not cure."""

    def __init__(self, status: int, method: str, url: str, detail: str = "") -> None:
        self.status = status
        self.method = method
        self.url = url
        self.detail = detail
        text = f"Preservica answered HTTP {status} to {method} {url}"
        if detail:
            text += f": {detail}"
        super().__init__(text)


class IngestConflictError(PreservicaError):
    """Files whose SourceID an asset below the target already carries with other content: never skipped silently."""

    def __init__(self, conflicts: list[str]) -> None:
        self.conflicts = conflicts
        shown = "; ".join(conflicts[:5]) + (f"; and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        super().__init__(
            f"{len(conflicts)} file(s) conflict with assets already in the target folder: {shown}. Nothing was "
            "uploaded. Give this delivery its own source_id_namespace (or another parent_ref) if it is a different "
            "delivery, or pass on_conflict='skip' to ingest the other files and list these in the report"
        )


class IngestClaimTimeout(PreservicaError):
    """Another run kept an ingest's target (folder and SourceID namespace) longer than this run may wait."""
