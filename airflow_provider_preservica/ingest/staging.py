"""A landing folder for unattended ingests: stage the day's delivery, then file it under done/ or quarantine/.

Everything lives below one landing root, so every move is a rename inside one filesystem (atomic per
file, or for a whole folder when the target does not exist yet)::

    <landing>/<day>/...                       the day's delivery: the sources, never deleted here
    <landing>/.staging/<day>/...              hard links (copies across filesystems) of the files to send
    <landing>/.staging/<day>.manifest.json    one record per file: SourceID, fixity, outcome, ref
    <landing>/done/<day>/...                  sources whose ingest was verified
    <landing>/quarantine/<reason>/<day>/...   sources that were not ingested: illegal-name, ingest-failed, ...

The sources stay in ``<landing>/<day>`` until the ingest is verified (or has failed): the package is built
from the staged links, so a crash at any point leaves every file either in the delivery or filed, never lost.
Files whose names Preservica would reject are moved to ``quarantine/illegal-name/<day>/`` (relative paths
kept) before staging, so one bad name no longer stops the rest of the delivery.

Nothing here talks to Airflow; ``existing`` (which SourceIDs Preservica already holds) is a callable.
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import io
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_preservica.exceptions import NothingDelivered, SourceChangedError, StagingError
from airflow_provider_preservica.files.nofollow import stage_file
from airflow_provider_preservica.files.report_csv import ReportDictWriter
from airflow_provider_preservica.files.storage import atomic_output
from airflow_provider_preservica.ingest.packaging import LocalSourceTree, hash_files, scan_source, uuid_source_ids
from airflow_provider_preservica.ingest.packaging.model import ValidationIssue
from airflow_provider_preservica.ingest.packaging.source import SourceEntry

#: Validation codes that mean "rename this file": they all go to ``quarantine/illegal-name/``.
NAME_CODES = frozenset(
    {
        "illegal-character",
        "control-character",
        "trailing-dot-or-space",
        "reserved-name",
        "name-too-long",
        "non-ascii",
        "invalid-encoding",
        "opex-in-source",
        "case-collision",
        "sidecar-manifest-clash",
    }
)
#: Folder-level findings that do not concern any file: staging only links files, so they disappear.
IGNORED_CODES = frozenset({"empty-folder", "empty-source"})
CSV_COLUMNS = ["path", "source_id", "outcome", "ref", "bytes", "fixity_type", "fixity_value", "detail"]
XCOM_LIST_LIMIT = 20
#: Quarantine reason of a file whose SourceID Preservica holds below the target with other content.
CONFLICT = "conflict"


@dataclass(frozen=True)
class Holdings:
    """What Preservica already holds of the staged files, by SourceID (see ``ingest.identity`` for the rule)."""

    present: Mapping[str, str] = field(default_factory=dict)  # same content below the target: SourceID -> ref
    conflicts: Mapping[str, str] = field(default_factory=dict)  # other content below the target: SourceID -> why


#: ``existing(records) -> Holdings``: ``records`` are the staged files, with SourceID, path and fixity.
ExistingLookup = Callable[[list["FileRecord"]], Holdings]


@dataclass(frozen=True)
class LandingLayout:
    """Where one day's delivery and everything derived from it live."""

    root: Path
    day: str
    staging_root: Path | None = None

    def __post_init__(self) -> None:
        if not self.day or "/" in self.day or self.day in (".", ".."):
            raise StagingError(f"day {self.day!r} cannot be a folder name")

    @classmethod
    def of(
        cls, root: str | os.PathLike[str], day: str, staging_root: str | os.PathLike[str] | None = None
    ) -> LandingLayout:
        return cls(
            Path(root).expanduser().resolve(), day, Path(staging_root).expanduser().resolve() if staging_root else None
        )

    @property
    def delivery(self) -> Path:
        return self.root / self.day

    @property
    def staged(self) -> Path:
        return (self.staging_root or self.root / ".staging") / self.day

    @property
    def manifest_path(self) -> Path:
        return self.staged.with_name(f"{self.day}.manifest.json")

    @property
    def done(self) -> Path:
        return self.root / "done" / self.day

    def quarantine(self, reason: str) -> Path:
        return self.root / "quarantine" / reason / self.day


@dataclass
class FileRecord:
    """One file of the delivery and what became of it.

    ``outcome``: ``pending`` (staged, to be sent), ``created``, ``skipped`` (Preservica holds it below the
    target with the same content), ``quarantined`` (``detail`` says why: an illegal name, a conflict, a failed
    ingest), ``missing`` (sent, but not findable afterwards).
    """

    path: str
    source_id: str = ""
    outcome: str = "pending"
    ref: str = ""
    bytes: int = 0
    fixity_type: str = ""
    fixity_value: str = ""
    detail: str = ""


@dataclass
class StagingManifest:
    day: str
    delivery: str
    staged: str
    namespace: str
    files: list[FileRecord] = field(default_factory=list)
    parent_ref: str = ""
    filed_to: str = ""

    def count(self, outcome: str) -> int:
        return sum(1 for record in self.files if record.outcome == outcome)

    @property
    def to_ingest(self) -> int:
        return self.count("pending")

    def quarantined(self) -> list[FileRecord]:
        return [record for record in self.files if record.outcome == "quarantined"]

    def save(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.partial")
        temporary.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        os.replace(temporary, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> StagingManifest:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["files"] = [FileRecord(**record) for record in data["files"]]
        return cls(**data)

    def to_xcom(self, manifest_path: str | os.PathLike[str]) -> dict[str, Any]:
        """Small whatever the delivery's size: counts, paths and the first quarantined names."""
        quarantined = self.quarantined()
        return {
            "day": self.day,
            "manifest": str(manifest_path),
            "staged": self.staged,
            "files": len(self.files),
            "to_ingest": self.to_ingest,
            "skipped": self.count("skipped"),
            "quarantined": len(quarantined),
            "quarantined_paths": [f"{r.path} ({r.detail})" for r in quarantined[:XCOM_LIST_LIMIT]],
        }

    def summary(self) -> str:
        """What a person reads first: counts per outcome, every quarantined file and why."""
        counts = ", ".join(
            f"{self.count(o)} {o}" for o in ("created", "skipped", "quarantined", "missing", "pending") if self.count(o)
        )
        lines = [
            f"Ingest of the delivery of {self.day}: {len(self.files)} files ({counts or 'none'})",
            f"  delivery        : {self.delivery}",
            f"  parent folder   : {self.parent_ref or '-'}",
            f"  sources filed to: {self.filed_to or '(still in the delivery folder)'}",
        ]
        lines += [f"  quarantined     : {r.path}: {r.detail}" for r in self.quarantined()]
        lines += [f"  missing         : {r.path}: {r.detail}" for r in self.files if r.outcome == "missing"]
        return "\n".join(lines)

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = ReportDictWriter(buffer, CSV_COLUMNS, lineterminator="\n")  # for a spreadsheet: formulas neutralised
        writer.writeheader()
        for record in sorted(self.files, key=lambda r: r.path):
            writer.writerow(asdict(record))
        return buffer.getvalue()


# -- moving files ----------------------------------------------------------------------------------------------
def _free_name(target: Path) -> Path:
    """``name.ext`` -> ``name.1.ext``, ``name.2.ext``... : the first that does not exist."""
    for number in range(1, 10_000):
        candidate = target.with_name(f"{target.stem}.{number}{target.suffix}")
        if not candidate.exists():
            return candidate
    raise StagingError(f"no free name next to {target}")


def _move_file(source: Path, target: Path) -> Path:
    """Move one file without ever losing it; an existing different file at ``target`` is kept (new name)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not (target.is_file() and filecmp.cmp(source, target, shallow=False)):
        target = _free_name(target)
    try:
        os.replace(source, target)  # atomic; replaces only an identical copy
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        temporary = target.with_name(f".{target.name}.partial")
        shutil.copy2(source, temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        source.unlink()  # only now: the copy is complete and in place
    return target


def _prune_empty_folders(top: Path) -> None:
    """Remove folders left empty below ``top`` (and ``top`` itself); never a folder that still holds anything."""
    if not top.is_dir():
        return
    for folder, _, _ in sorted(os.walk(top), key=lambda item: -len(item[0])):
        with contextlib.suppress(OSError):  # not empty
            os.rmdir(folder)


def move_tree(source: Path, target: Path) -> int:
    """Move every file below ``source`` to the same relative path below ``target``; returns how many moved.

    When ``target`` does not exist yet the whole folder is renamed at once. Otherwise the files are
    moved one by one (each move atomic): a file identical to one already there replaces it, a
    different one is kept under a numbered name. Hidden files move too: the delivery is filed whole.
    """
    if not source.is_dir():
        return 0
    files = [Path(folder) / name for folder, _, names in os.walk(source) for name in names]
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(source, target)
            return len(files)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    for file in files:
        _move_file(file, target / file.relative_to(source))
    _prune_empty_folders(source)
    return len(files)


def move_files(source_root: Path, paths: Iterable[str], target_root: Path) -> None:
    """Move the files at ``paths`` (relative to ``source_root``) to the same relative paths below ``target_root``."""
    for path in paths:
        _move_file(source_root / path, target_root / path)


# -- staging ---------------------------------------------------------------------------------------------------
def _reason(issue: ValidationIssue) -> str:
    return "illegal-name" if issue.code in NAME_CODES else issue.code


def _problems_by_path(issues: Iterable[ValidationIssue]) -> dict[str, list[ValidationIssue]]:
    found: dict[str, list[ValidationIssue]] = {}
    for issue in issues:
        if issue.code in IGNORED_CODES:
            continue
        if not issue.path or issue.path.startswith("<"):
            raise StagingError(f"the delivery cannot be ingested at all: {issue.describe()}")
        found.setdefault(issue.path, []).append(issue)
    return found


def _issues_for(path: str, problems: dict[str, list[ValidationIssue]]) -> list[ValidationIssue]:
    """Problems of the file itself and of every folder above it."""
    parts = path.split("/")
    issues: list[ValidationIssue] = []
    for depth in range(1, len(parts) + 1):
        issues += problems.get("/".join(parts[:depth]), [])
    return issues


def _link_or_copy(delivery: Path, entry: SourceEntry, target: Path) -> None:
    """A hard link (a copy across filesystems) of the file the scan saw: never through a link (``nofollow``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        stage_file(delivery, entry.path, target, link=True, identity=entry.identity)
    except SourceChangedError as exc:
        raise StagingError(str(exc)) from None


def _reset_staging(layout: LandingLayout) -> None:
    staged = layout.staged
    if layout.delivery == staged or layout.delivery in staged.parents or staged in layout.delivery.parents:
        raise StagingError(f"staging folder {staged} overlaps the delivery {layout.delivery}; choose another one")
    if staged.exists():
        shutil.rmtree(staged)  # links and copies only: the sources are in the delivery folder


def stage_delivery(
    layout: LandingLayout,
    *,
    namespace: str | None = None,
    existing: ExistingLookup | None = None,
    fixity: str = "SHA-256",
) -> StagingManifest:
    """Validate the day's delivery, quarantine what cannot be ingested and stage the rest.

    :param namespace: the SourceID namespace the ingest will use (default: the day, like
        ``PreservicaIngestOperator`` with a source folder named after the day).
    :param existing: ``existing(staged records) -> Holdings``: files Preservica holds with the same content are
        recorded as ``skipped`` (with their ref) and left out of the staged tree; files it holds with other
        content under the same SourceID are conflicts, moved to ``quarantine/conflict/<day>/`` and never
        skipped silently. ``None``: stage everything. ``ingest.existing.held_below`` is the lookup that
        applies the ingest operator's rule (below the target folder, same fixity).
    :raises NothingDelivered: no delivery folder, or no files in it.
    """
    delivery = layout.delivery
    if not delivery.is_dir():
        raise NothingDelivered(f"no delivery for {layout.day}: {delivery} does not exist")
    namespace = namespace or layout.day
    tree = LocalSourceTree(delivery)
    scan = scan_source(tree, top_name=layout.day)
    problems = _problems_by_path(scan.errors)
    hidden = set(scan.excluded)
    entries = [
        e
        for e in tree.scan(lambda e: e.path in hidden)
        if e.kind != "dir" and e.path not in hidden and not any(e.path.startswith(h + "/") for h in hidden)
    ]
    if not entries:
        raise NothingDelivered(f"no delivery for {layout.day}: {delivery} holds no files")
    manifest = StagingManifest(layout.day, str(delivery), str(layout.staged), namespace)
    source_ids = uuid_source_ids(namespace)
    to_quarantine: dict[str, list[str]] = {}
    _reset_staging(layout)
    for entry in entries:
        issues = _issues_for(entry.path, problems)
        record = FileRecord(entry.path, bytes=entry.size)
        if issues:
            reason = _reason(issues[0])
            record.outcome = "quarantined"
            record.detail = f"{reason}: " + "; ".join(issue.problem for issue in issues)
            to_quarantine.setdefault(reason, []).append(entry.path)
        else:
            record.source_id = source_ids(entry.path, False)
            _link_or_copy(delivery, entry, layout.staged / entry.path)
        manifest.files.append(record)
    staged = [record for record in manifest.files if record.outcome == "pending"]
    hashes = hash_files([layout.staged / record.path for record in staged], fixity)
    for record in staged:
        record.fixity_type = fixity
        record.fixity_value = hashes[layout.staged / record.path].value(fixity)
    if existing is not None and staged:
        held = existing(staged)
        for record in staged:
            if record.source_id in held.present:
                record.outcome, record.ref = "skipped", held.present[record.source_id]
                record.detail = "already in Preservica below the target, same content"
            elif record.source_id in held.conflicts:
                record.outcome = "quarantined"
                record.detail = f"{CONFLICT}: {held.conflicts[record.source_id]}"
                to_quarantine.setdefault(CONFLICT, []).append(record.path)
            else:
                continue
            (layout.staged / record.path).unlink()
        _prune_empty_folders(layout.staged)
    # Only now, when nothing else can fail, do files leave the delivery: a retry then sees the same delivery.
    for reason, paths in to_quarantine.items():
        move_files(delivery, paths, layout.quarantine(reason))
    manifest.save(layout.manifest_path)
    return manifest


# -- after the ingest ------------------------------------------------------------------------------------------
def record_ingested(manifest: StagingManifest, found: Mapping[str, str]) -> None:
    """Mark every staged file ``created`` with the ref Preservica gave it (``found``: SourceID -> ref)."""
    for record in manifest.files:
        if record.outcome != "pending":
            continue
        if record.source_id in found:
            record.outcome, record.ref = "created", found[record.source_id]
        else:
            record.outcome = "missing"
            record.detail = "sent, but no asset carries its SourceID after the ingest"


def file_delivery(
    layout: LandingLayout, manifest: StagingManifest, *, reason: str | None = None, detail: str = ""
) -> Path:
    """Move the day's sources to ``done/<day>`` (``reason`` None) or ``quarantine/<reason>/<day>``.

    Call it only once the ingest is verified, or has failed: until then the sources stay where they were
    delivered. On quarantine every file not yet filed is marked ``quarantined`` with the reason and ``detail``.
    """
    target = layout.done if reason is None else layout.quarantine(reason)
    move_tree(layout.delivery, target)
    if reason is not None:
        for record in manifest.files:
            if record.outcome in ("pending", "skipped", "missing"):
                record.outcome = "quarantined"
                record.detail = f"{reason}: {detail or 'the delivery was not ingested'}"
    manifest.filed_to = str(target)
    if layout.staged.exists():
        shutil.rmtree(layout.staged)
    manifest.save(layout.manifest_path)
    return target


def write_report(manifest: StagingManifest, destination: str) -> tuple[str, str]:
    """Write ``<destination>`` (CSV, one row per file) and the readable summary next to it (``.txt``).

    ``destination`` is a local path or an object-storage URL; each file appears complete or not at all.
    Returns (csv path, summary path).
    """
    summary_path = destination[: -len(".csv")] + ".txt" if destination.endswith(".csv") else destination + ".txt"
    for path, text in ((destination, manifest.csv_text()), (summary_path, manifest.summary() + "\n")):
        if "://" not in path:
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    return destination, summary_path
