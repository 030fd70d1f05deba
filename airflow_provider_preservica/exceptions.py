r"""Every error the provider raises, in one hierarchy under :class:`PreservicaError`.

Every message says what is wrong and how to fix it, and never contains a password, a 2FA secret or
an access token: callers may log or show these messages anywhere.

This module is the one place provider exceptions are defined (``tests/unit/test_exceptions.py`` checks
it). Older import paths (``packaging.errors``, ``client.entities``, ``staging`` ...) re-export the names
from here, so ``except`` clauses written against them keep catching the same classes. Where a caller
catches a builtin today, the class keeps that base too (``DocumentRefused`` and ``InvalidTotpSecret`` are
``ValueError``\s).

The tree::

    PreservicaError
      PreservicaConfigError        fix the Connection, the arguments or the input, then retry
        UnsafeInputError, InsecureTransportError, PreservicaRedirectError, InvalidTotpSecret,
        PreservicaSearchError, EntityNotFoundError > EntityTypeMismatchError, WorkflowContextNotFoundError,
        DeletionRefusedError, ManifestTooLargeError, SheetError
      PreservicaAuthError          Preservica refused to authorise the work
        PreservicaLoginRejectedError > PreservicaTwoFactorRejectedError, PreservicaTokenRejectedError,
        RefreshRejected
      PreservicaConnectionError, PreservicaHTTPError, TokenStoreUnavailable
      ProgressTokenUnknownError, ProgressTimeoutError, WorkflowInstanceUnknownError, BitstreamMismatchError
      IngestConflictError, IngestClaimTimeout, StagingError > NothingDelivered
      SendError, PartlySent, AdoptionUnknown   a delivery of several packages: what was sent, what is unknown
      RunStateLost                 a deferred metadata run's per-row state cannot be read back
      PackagingError               offline packaging: validate, hash, build, inspect, unpack
        PackageValidationError > MissingSecurityTagError, FixityError > SourceChangedError,
        MissingSourceFilesError, PackageFormatError > UnsafeArchiveError
      DocumentRefused              an XML document from elsewhere was refused (also a ValueError)
      ManifestChangedError, DeletionFailedError
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: this module imports nothing of the provider at run time
    from airflow_provider_preservica.ingest.packaging.model import ValidationIssue

#: How the errors name an entity type (``client.entities`` re-exports it).
KIND_NAMES: dict[str, str] = {"SO": "a folder", "IO": "an asset", "CO": "a content object"}


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


# --------------------------------------------------------------------------- configuration and input
class InvalidTotpSecret(PreservicaConfigError, ValueError):
    """The 2FA seed is not valid base32 (or is empty)."""


class PreservicaSearchError(PreservicaConfigError):
    """Preservica refused the query itself: an unknown field, a malformed query, an unknown parent."""


class EntityNotFoundError(PreservicaConfigError):
    """No entity with that reference (or not of that type)."""


class EntityTypeMismatchError(EntityNotFoundError):
    """The reference exists, as another type; ``what`` says so without advice, for callers that give their own."""

    def __init__(self, ref: str, wanted: str, actual: str) -> None:
        self.ref, self.wanted, self.actual = ref, wanted, actual
        self.what = f"{ref!r} is {KIND_NAMES[actual]} ({actual}), not {KIND_NAMES[wanted]} ({wanted})"
        super().__init__(f"{self.what}; set entity_type to {actual!r} or leave it out")


class WorkflowContextNotFoundError(PreservicaConfigError):
    """No workflow context has that name or id (the message lists the ones there are)."""


class DeletionRefusedError(PreservicaConfigError):
    """Preservica will not take the deletion (no deletion workflow, or the account lacks the rights)."""


class ManifestTooLargeError(PreservicaConfigError):
    """More entities would go than ``max_entities`` allows."""


class SheetError(PreservicaConfigError):
    """The sheet cannot be read at all (missing file, unknown format, bad header)."""


# --------------------------------------------------------------------------- tokens and their store
class RefreshRejected(PreservicaAuthError):
    """Preservica would not exchange the refresh token (already used, expired, revoked): log in instead."""


class TokenStoreUnavailable(PreservicaError):
    """The store cannot be used from this process."""


# --------------------------------------------------------------------------- remote jobs and downloads
class ProgressTokenUnknownError(PreservicaError):
    """Preservica answered 404 for the progress token: it never issued it, or has forgotten it."""


class ProgressTimeoutError(PreservicaError):
    """The remote work did not finish in time; the message names the progress token."""


class WorkflowInstanceUnknownError(PreservicaError):
    """Preservica answered 404 for the workflow instance."""


class BitstreamMismatchError(PreservicaError):
    """A downloaded bitstream differs from the size or fixity Preservica declares for it."""


# --------------------------------------------------------------------------- staging a delivery
class StagingError(PreservicaError):
    """The delivery as a whole cannot be staged (the message says why and what to do)."""


class NothingDelivered(StagingError):
    """No delivery folder for this day, or it holds no files."""


# --------------------------------------------------------------------------- packaging
class PackagingError(PreservicaError):
    """Base class of the errors of the offline packaging layer.

    Validation errors carry *every* problem found, each with the path, what is wrong and how to fix it,
    so that one run tells the archivist everything to correct (not one path per attempt).
    """


class PackageValidationError(PackagingError):
    """The source (or its metadata) has problems that would make the ingest fail or lose content.

    ``issues`` lists every problem found (never only the first); the message lists them all too.
    """

    def __init__(self, issues: Sequence[ValidationIssue], summary: str = "") -> None:
        self.issues: list[ValidationIssue] = list(issues)
        paths = {issue.path for issue in self.issues}
        head = summary or (
            f"The package source has {len(self.issues)} problem(s) in {len(paths)} path(s); nothing was packaged"
        )
        lines = [f"{head}:"] + [f"  - {issue.describe()}" for issue in self.issues]
        super().__init__("\n".join(lines))

    @property
    def paths(self) -> list[str]:
        """Every offending path, in order of first appearance, without duplicates."""
        return list(dict.fromkeys(issue.path for issue in self.issues))


class MissingSecurityTagError(PackageValidationError):
    """At least one folder or asset would be ingested without an explicitly chosen security tag."""


class FixityError(PackagingError):
    """A file could not be hashed, or changed (size) while the package was being built."""

    def __init__(self, message: str, paths: Sequence[str] = ()) -> None:
        self.paths = list(paths)
        super().__init__(message)


class SourceChangedError(FixityError):
    """A source file was replaced (by a link or another file) between the scan and staging: nothing is staged."""


class MissingSourceFilesError(PackagingError):
    """Files the scan of the source found were gone when the package was built (moved or deleted meanwhile).

    ``paths`` are relative to the source root. Nothing was uploaded: an ingest that silently lacked them
    would look complete.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        shown = ", ".join(self.paths[:20]) + (f" and {len(self.paths) - 20} more" if len(self.paths) > 20 else "")
        super().__init__(
            f"{len(self.paths)} file(s) of the source disappeared before they could be packaged: {shown}. "
            "Nothing was uploaded. Wait until nothing else moves or deletes files in the source and run again, "
            "or pass allow_missing_files=True to ingest the rest and list these as missing in the report."
        )


class PackageFormatError(PackagingError):
    """A ready-made zip is not a package Preservica can ingest (not a zip, corrupt, unknown layout)."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        text = message
        if self.problems:
            text += ":\n" + "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(text)


class UnsafeArchiveError(PackageFormatError):
    """A zip from elsewhere would write outside its folder, holds links, or would not fit (size, ratio, disk).

    Nothing was unpacked: ``problems`` names each offending member and what is wrong with it.
    """


class DocumentRefused(PreservicaError, ValueError):
    """A document is too large or declares a DTD: it was not (fully) read. The message names it.

    Also a ``ValueError``: export verification and the OPEX reader catch it as one.
    """


# --------------------------------------------------------------------------- ingest of several packages
class SendError(PreservicaError):
    """An upload failed; ``sent`` are the packages (``ingest.sending.SentPackage``) Preservica has nevertheless
    taken."""

    def __init__(self, message: str, sent: Sequence[object]) -> None:
        super().__init__(message)
        self.sent = list(sent)


class PartlySent(PreservicaError):
    """An upload failed after Preservica had taken some packages; the record lets a retry adopt them."""


class AdoptionUnknown(PreservicaError):
    """The progress of a package an earlier try sent cannot be read now: sending again could ingest it twice."""


class RunStateLost(PreservicaError):
    """The per-row state a deferred metadata run wrote cannot be read back here (another worker, or removed)."""


# --------------------------------------------------------------------------- deletion
class ManifestChangedError(PreservicaError):
    """The repository no longer matches the approved manifest: nothing was deleted. Not retryable: a new
    manifest must be made and approved."""

    retryable = False


class DeletionFailedError(PreservicaError):
    """Preservica did not carry out a deletion it was asked for (rejected, failed, or the entity is still there)."""


__all__ = [
    "KIND_NAMES",
    "AdoptionUnknown",
    "BitstreamMismatchError",
    "DeletionFailedError",
    "DeletionRefusedError",
    "DocumentRefused",
    "EntityNotFoundError",
    "EntityTypeMismatchError",
    "FixityError",
    "IngestClaimTimeout",
    "IngestConflictError",
    "InsecureTransportError",
    "InvalidTotpSecret",
    "ManifestChangedError",
    "ManifestTooLargeError",
    "MissingSecurityTagError",
    "MissingSourceFilesError",
    "NothingDelivered",
    "PackageFormatError",
    "PackageValidationError",
    "PackagingError",
    "PartlySent",
    "PreservicaAuthError",
    "PreservicaConfigError",
    "PreservicaConnectionError",
    "PreservicaError",
    "PreservicaHTTPError",
    "PreservicaLoginRejectedError",
    "PreservicaRedirectError",
    "PreservicaSearchError",
    "PreservicaTokenRejectedError",
    "PreservicaTwoFactorRejectedError",
    "ProgressTimeoutError",
    "ProgressTokenUnknownError",
    "RefreshRejected",
    "RunStateLost",
    "SendError",
    "SheetError",
    "SourceChangedError",
    "StagingError",
    "TokenStoreUnavailable",
    "UnsafeArchiveError",
    "UnsafeInputError",
    "WorkflowContextNotFoundError",
    "WorkflowInstanceUnknownError",
]
