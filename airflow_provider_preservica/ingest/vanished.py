"""Files that disappear between the scan of a source and its packaging are named, never silently dropped.

The ingest scans the source first (to skip what Preservica already holds), and the builder scans it again
and stages it: a file moved or deleted in between would simply be missing from the package, and the task
would succeed without it. Here the package is compared with the first scan. Unless the user allowed it
(``allow_missing_files``), a missing file fails the ingest before anything is uploaded; when allowed, the
package is built from what is left and the report lists every missing path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from airflow_provider_preservica.ingest.packaging import (
    MissingSourceFilesError,
    PackageManifest,
    PackageValidationError,
)
from airflow_provider_preservica.ingest.packaging.validation import display

#: ``build(left_out)`` builds the package without the relative paths in ``left_out``.
Build = Callable[[list[str]], PackageManifest]


def build_without_vanished(
    build: Build, scanned: Iterable[str], left_out: Iterable[str], exists: Callable[[str], bool], *, allow: bool
) -> tuple[PackageManifest, list[str]]:
    """Build the package; returns it with the scanned files it lacks (only when ``allow``, else raises).

    :param scanned: the relative paths of every file the first scan found.
    :param left_out: the paths left out on purpose (already in Preservica).
    :param exists: whether a relative path is still in the source.
    :raises MissingSourceFilesError: naming every missing path, unless ``allow``.
    """
    scanned = list(scanned)
    skipped = list(left_out)
    missing: list[str] = []
    while True:
        expected = set(skipped) | set(missing)
        try:
            manifest = build(skipped + missing)
        except MissingSourceFilesError as exc:  # gone while the builder staged it
            gone = [path for path in exc.paths if path not in expected]
            if not gone:  # (a name the builder could only show escaped)
                raise
        except PackageValidationError:  # e.g. "folder is empty" once its only file is gone: name the file
            gone = [path for path in scanned if path not in expected and not exists(path)]
            if not gone:
                raise
        else:
            packaged = {asset.path for asset in manifest.assets}
            gone = [path for path in scanned if path not in packaged and path not in expected]
            if not gone or allow:
                return manifest, sorted(missing + gone)
        if not allow:
            raise MissingSourceFilesError([display(path) for path in gone]) from None
        missing += gone
