"""Errors raised while validating, hashing, building or inspecting a package.

Validation errors carry *every* problem found, each with the path, what is wrong and how to fix it,
so that one run tells the archivist everything to correct (not one path per attempt).
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.packaging.model import ValidationIssue


class PackagingError(PreservicaError):
    """Base class of the errors of the offline packaging layer."""


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


class SourceChangedError(FixityError):
    """A source file was replaced (by a link or another file) between the scan and staging: nothing is staged."""
