"""The errors of the offline packaging layer, now defined in :mod:`airflow_provider_preservica.exceptions`.

This module keeps the import path ``airflow_provider_preservica.packaging.errors`` working: every name is the
class from ``exceptions`` itself, so ``except`` clauses written against either path catch the same errors.
"""

from __future__ import annotations

from airflow_provider_preservica.exceptions import (
    FixityError,
    MissingSecurityTagError,
    MissingSourceFilesError,
    PackageFormatError,
    PackageValidationError,
    PackagingError,
    SourceChangedError,
    UnsafeArchiveError,
)

__all__ = [
    "FixityError",
    "MissingSecurityTagError",
    "MissingSourceFilesError",
    "PackageFormatError",
    "PackageValidationError",
    "PackagingError",
    "SourceChangedError",
    "UnsafeArchiveError",
]
