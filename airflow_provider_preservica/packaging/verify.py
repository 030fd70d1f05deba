"""Check a downloaded export: the zip is intact, and every fixity its OPEX sidecars declare matches.

Sidecar ``x.pax.zip.opex`` (or ``x.tif.opex``) describes the member ``x.pax.zip`` (``x.tif``) next to
it; a ``Fixity`` with a ``path`` attribute names its file relative to the sidecar's folder. Members
are hashed by streaming from the archive, so a multi-gigabyte export needs one chunk of memory.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_preservica.packaging.errors import FixityError, PackageFormatError
from airflow_provider_preservica.packaging.fixity import hash_stream
from airflow_provider_preservica.packaging.opex import read_opex


@dataclass
class ArchiveCheck:
    files: int = 0
    fixities_checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.missing


def verify_archive(path: str | Path) -> ArchiveCheck:
    """Raise ``PackageFormatError`` for a damaged zip; report (not raise) fixity problems."""
    check = ArchiveCheck()
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            if broken is not None:
                raise PackageFormatError(f"export {Path(path).name} is damaged: member {broken!r} fails its CRC")
            names = set(archive.namelist())
            check.files = sum(1 for n in names if not n.endswith("/") and not n.endswith(".opex"))
            for sidecar in sorted(n for n in names if n.endswith(".opex")):
                try:
                    document = read_opex(archive.read(sidecar))
                except ValueError:
                    continue
                folder = posixpath.dirname(sidecar)
                for record in document.fixities:
                    target_path = getattr(record, "path", None)
                    target = posixpath.join(folder, target_path) if target_path else sidecar[: -len(".opex")]
                    if target not in names:
                        check.missing.append(target)
                        continue
                    with archive.open(target) as stream:
                        actual = hash_stream(stream, record.algorithm).value(record.algorithm)  # type: ignore[arg-type]
                    check.fixities_checked += 1
                    if actual.lower() != record.value.lower():
                        check.mismatches.append(f"{target}: {record.algorithm} {actual} != declared {record.value}")
    except zipfile.BadZipFile as exc:
        raise PackageFormatError(f"export {Path(path).name} is not a readable zip: {exc}") from None
    return check


def require_intact(path: str | Path) -> ArchiveCheck:
    check = verify_archive(path)
    if not check.ok:
        problems = check.mismatches + [f"{m}: declared in a sidecar but absent" for m in check.missing]
        raise FixityError(f"export {Path(path).name} fails verification: " + "; ".join(problems[:10]))
    return check
