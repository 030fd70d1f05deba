"""Check a source tree before anything leaves the machine.

Preservica (and the Windows tools around it) reject or silently drop some names: a ``:`` ``<`` ``>`` or
``|`` fails the whole OPEX ingest, ``?`` and non-ASCII names are skipped without a word. Finding that
out after a night of uploading is the failure this module prevents. It walks the whole tree once and
reports *every* problem at the same time:

errors (nothing is packaged)
    illegal characters (``: < > | " ? * \\`` and control characters), names ending in a dot or a space,
    reserved Windows names (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM1``-``COM9``, ``LPT1``-``LPT9``, with or
    without an extension), names longer than 250 bytes (the ``.opex`` sidecar adds 5 to reach the
    255-byte limit), names that are not valid UTF-8, non-ASCII names (unless allowed), names that
    collide case-insensitively in one folder, ``.opex`` files already in the source (the builder writes
    its own), symlinks (never followed: they can leave the tree or loop), special files (FIFOs, devices),
    unreadable files or folders, empty folders (unless allowed).
warnings (returned)
    zero-byte files; hidden and system files (``.DS_Store``, ``Thumbs.db``, ``desktop.ini``, ``~$*`` Office
    lock files, names starting with ``.``), which are excluded from the package and listed.
"""

from __future__ import annotations

import fnmatch
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from airflow_provider_preservica.exceptions import PackageValidationError
from airflow_provider_preservica.ingest.packaging.model import Severity, ValidationIssue
from airflow_provider_preservica.ingest.packaging.source import SourceEntry, SourceTree

ILLEGAL_CHARACTERS = ':<>|"?*\\'
RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
)
#: The ``.opex`` sidecar (and ``<folder>.opex`` manifest) must fit in 255 bytes too.
MAX_NAME_BYTES = 255 - len(".opex")
DEFAULT_HIDDEN_PATTERNS: tuple[str, ...] = (
    ".*",
    "Thumbs.db",
    "ehthumbs.db",
    "desktop.ini",
    "~$*",
    "Icon\r",
    "$RECYCLE.BIN",
    "System Volume Information",
)


@dataclass(frozen=True)
class ValidationOptions:
    """Policy knobs; the defaults are the safe ones for an unattended nightly ingest."""

    allow_empty_folders: bool = False
    allow_non_ascii: bool = False
    allow_zero_byte_files: bool = True
    exclude_hidden: bool = True
    hidden_patterns: tuple[str, ...] = DEFAULT_HIDDEN_PATTERNS
    max_name_bytes: int = MAX_NAME_BYTES

    def is_hidden(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.hidden_patterns)


@dataclass
class ValidationResult:
    """What a scan found: the entries to package, what was left out, and every issue."""

    files: list[SourceEntry] = field(default_factory=list)
    folders: list[SourceEntry] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    errors: list[ValidationIssue] = field(default_factory=list)
    warnings: list[ValidationIssue] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, issues: Iterable[ValidationIssue]) -> None:
        for issue in issues:
            (self.errors if issue.severity == "error" else self.warnings).append(issue)

    def raise_for_errors(self) -> None:
        if self.errors:
            raise PackageValidationError(self.errors)


def _issue(path: str, code: str, problem: str, fix: str, severity: Severity = "error") -> ValidationIssue:
    return ValidationIssue(path=path, code=code, problem=problem, fix=fix, severity=severity)


def display(path: str) -> str:
    """A path that can always be printed and logged (undecodable bytes shown as ``\\xNN``)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def collation_key(name: str) -> str:
    """How Windows, macOS and Preservica compare names: case-insensitively and Unicode-normalised."""
    return unicodedata.normalize("NFC", name).casefold()


def check_name(name: str, path: str, options: ValidationOptions) -> list[ValidationIssue]:
    """Every problem with one file or folder name (the last component of ``path``)."""
    issues: list[ValidationIssue] = []
    shown = display(path)
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return [
            _issue(
                shown,
                "invalid-encoding",
                "name is not valid UTF-8",
                "rename it (e.g. with `convmv -f <encoding> -t utf-8`)",
            )
        ]
    bad = sorted({c for c in name if c in ILLEGAL_CHARACTERS})
    control = sorted({c for c in name if ord(c) < 32 or ord(c) == 127})
    if bad:
        issues.append(
            _issue(
                shown,
                "illegal-character",
                f"name contains {' '.join(repr(c) for c in bad)}, which Preservica rejects or silently skips",
                'rename it without any of : < > | " ? * \\',
            )
        )
    if control:
        codes = ", ".join(f"U+{ord(c):04X}" for c in control)
        issues.append(_issue(shown, "control-character", f"name contains control characters ({codes})", "rename it"))
    if name.endswith((".", " ")):
        issues.append(
            _issue(
                shown,
                "trailing-dot-or-space",
                "name ends with a dot or a space, which Windows and Preservica strip or reject",
                "rename it without the trailing dot or space",
            )
        )
    stem = name.split(".", 1)[0].rstrip(" ").upper()
    if stem in RESERVED_NAMES:
        issues.append(
            _issue(
                shown,
                "reserved-name",
                f"{stem} is a reserved device name on Windows (with any extension)",
                "rename it, e.g. with a prefix",
            )
        )
    if len(encoded) > options.max_name_bytes:
        issues.append(
            _issue(
                shown,
                "name-too-long",
                f"name is {len(encoded)} bytes long; at most {options.max_name_bytes} fit "
                "(255 bytes including the .opex suffix)",
                "shorten the name (keep the long form as the Title through metadata)",
            )
        )
    if not name.isascii():
        issue = _issue(
            shown,
            "non-ascii",
            "name has non-ASCII characters; Preservica's OPEX ingest silently skips such files",
            "rename it with ASCII characters only (keep the original as the Title through metadata), "
            "or pass allow_non_ascii=True if your Preservica accepts them",
            "warning" if options.allow_non_ascii else "error",
        )
        issues.append(issue)
    if name.lower().endswith(".opex"):
        issues.append(
            _issue(
                shown,
                "opex-in-source",
                "the source already contains OPEX metadata; the builder writes its own sidecars and manifests",
                "remove it and give its metadata through the metadata mapping, or zip your own OPEX "
                "package and ingest it as a ready-made zip",
            )
        )
    return issues


def scan_source(
    source: SourceTree, options: ValidationOptions | None = None, *, top_name: str | None = None
) -> ValidationResult:
    """Walk the whole tree and collect every issue; never raises for a problem in the content.

    ``top_name`` is the name the top folder will have in the package (default: the source's name).
    """
    options = options or ValidationOptions()
    top = top_name if top_name is not None else source.name
    result = ValidationResult()
    result.folders.append(SourceEntry("", "dir"))
    result.add(check_name(top, f"<package name {display(top)!r}>", options))

    def prune(entry: SourceEntry) -> bool:
        return options.exclude_hidden and options.is_hidden(entry.name)

    children: dict[str, list[SourceEntry]] = defaultdict(list)
    try:
        entries = list(source.scan(prune))
    except OSError as exc:
        result.errors.append(
            _issue(
                "",
                "unreadable",
                f"the source folder cannot be listed: {exc.strerror or exc}",
                "check path and permissions",
            )
        )
        return result
    for entry in entries:
        name = entry.name
        if options.exclude_hidden and options.is_hidden(name):
            result.excluded.append(display(entry.path))
            what = "folder" if entry.kind == "dir" else "file"
            result.warnings.append(
                _issue(
                    display(entry.path),
                    "hidden-excluded",
                    f"hidden or system {what}, left out of the package",
                    "nothing to do if it is clutter; otherwise rename it without the leading dot / system name",
                    "warning",
                )
            )
            continue
        children[entry.parent].append(entry)
        result.add(check_name(name, entry.path, options))
        shown = display(entry.path)
        if entry.error is not None:
            result.errors.append(
                _issue(
                    shown,
                    "unreadable",
                    f"cannot be read: {entry.error}",
                    "give the Airflow worker's user read (and for folders, execute) permission",
                )
            )
            continue
        if entry.kind == "symlink":
            result.errors.append(
                _issue(
                    shown,
                    "symlink",
                    "is a symbolic link; links are not followed (they can leave the tree or loop)",
                    "replace it by the file or folder it points to (e.g. `cp -L`), or remove it",
                )
            )
        elif entry.kind == "other":
            result.errors.append(
                _issue(
                    shown,
                    "not-a-regular-file",
                    "is not a regular file or folder (FIFO, socket or device)",
                    "remove it from the source",
                )
            )
        elif entry.kind == "dir":
            result.folders.append(entry)
        else:
            why = source.check_readable(entry.path)
            if why is not None:
                result.errors.append(
                    _issue(
                        shown,
                        "unreadable",
                        f"cannot be read: {why}",
                        "give the Airflow worker's user read permission on it",
                    )
                )
                continue
            folder_name = entry.parent.rsplit("/", 1)[-1] if entry.parent else top
            if collation_key(name) == collation_key(folder_name):
                result.errors.append(
                    _issue(
                        shown,
                        "sidecar-manifest-clash",
                        f"file has the name of its folder {display(folder_name)!r}: its sidecar {display(name)}.opex "
                        "would overwrite the folder manifest",
                        "rename the file (e.g. add its extension)",
                    )
                )
            if entry.size == 0:
                result.add(
                    [
                        _issue(
                            shown,
                            "zero-byte",
                            "file is empty (0 bytes); it will be ingested as an empty asset",
                            "check it is not a failed copy; remove it if it is",
                            "warning" if options.allow_zero_byte_files else "error",
                        )
                    ]
                )
            result.files.append(entry)

    result.add(_collisions(children))
    result.add(_empty_folders(result.folders, children, options))
    return result


def _collisions(children: dict[str, list[SourceEntry]]) -> Iterable[ValidationIssue]:
    for parent in sorted(children):
        groups: dict[str, list[SourceEntry]] = defaultdict(list)
        for entry in children[parent]:
            groups[collation_key(entry.name)].append(entry)
        for group in groups.values():
            if len(group) > 1:
                names = ", ".join(repr(display(e.name)) for e in group)
                for entry in group:
                    yield _issue(
                        display(entry.path),
                        "case-collision",
                        f"names {names} differ only by case or Unicode form; they collide in Preservica",
                        "rename all but one of them",
                    )


def _empty_folders(
    folders: list[SourceEntry], children: dict[str, list[SourceEntry]], options: ValidationOptions
) -> Iterable[ValidationIssue]:
    for folder in folders:
        if folder.error is not None or children.get(folder.path):
            continue
        if folder.path == "":
            yield _issue(
                "",
                "empty-source",
                "the source has nothing to package (no files or folders, once hidden files are left out)",
                "check the source path and that the files have arrived",
            )
        else:
            yield _issue(
                display(folder.path),
                "empty-folder",
                "folder is empty (or holds only hidden files); it would become an empty Preservica folder",
                "remove it, wait until its files have arrived, or pass allow_empty_folders=True",
                "warning" if options.allow_empty_folders else "error",
            )


def validate_source(
    source: SourceTree, options: ValidationOptions | None = None, *, top_name: str | None = None
) -> ValidationResult:
    """Scan and raise one ``PackageValidationError`` listing every error; return the result (warnings)."""
    result = scan_source(source, options, top_name=top_name)
    result.raise_for_errors()
    return result
