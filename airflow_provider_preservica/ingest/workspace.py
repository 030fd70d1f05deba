"""Where an ingest builds its package, and when that disappears again.

One fresh folder per package (``preservica-ingest-*`` in ``work_dir``, default ``$TMPDIR``), removed as
soon as the upload is over, however it ended: built and uploaded, refused by validation, failed upload, or
an exception. Nothing later needs the local zip: a retry adopts the ingest by its progress token and
rebuilds what it expects from the source, a failed ingest is packaged afresh, and a deferred wait (in the
triggerer, then ``execute_complete`` in another worker process) reads only the progress token. So the
package never outlives the try that built it, and no other process has to clean up after it.

``keep=True`` (the operator's ``keep_package``) keeps the package and the report says where it is. A
``work_dir`` given by the user is theirs: only the folder made here is removed, never anything else in it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow_provider_preservica.ingest.report import IngestReport

log = logging.getLogger(__name__)
PREFIX = "preservica-ingest-"


@contextmanager
def package_workspace(work_dir: str | None, report: IngestReport, *, keep: bool = False) -> Iterator[Path]:
    """A new empty folder for one package; removed when the block ends unless ``keep`` and it holds something.

    On the way out ``report.package_kept`` says whether ``report.package`` is still on disk (always for a
    ready-made zip: that file is the user's, never this folder's).
    """
    parent = Path(work_dir).expanduser() if work_dir else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    try:
        yield folder
    finally:
        if keep and any(folder.iterdir()):
            log.info("Keeping the package in %s (keep_package=True): remove it when it is no longer needed", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
        report.package_kept = bool(report.package) and Path(str(report.package)).exists()
