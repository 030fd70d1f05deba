"""Where package content comes from: a *source tree* of folders and files addressed by relative path.

The builder and the validator only use the ``SourceTree`` protocol, so a tree on object storage (an
Airflow ``ObjectStoragePath``) can be added later as another implementation without touching them:
``scan()`` lists entries, ``open()`` streams a file, ``local_path()`` lets a local tree be hard-linked
and hashed in place (a remote tree returns ``None`` and is copied through ``open()``).

Relative paths are POSIX strings (``"images/scan 01.tif"``); the root is ``""``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, Protocol, runtime_checkable

EntryKind = Literal["file", "dir", "symlink", "other"]


@dataclass(frozen=True, slots=True)  # one per file: no per-instance dict
class SourceEntry:
    """One entry of a source tree.

    ``kind`` is what the entry itself is (a symlink is reported as ``symlink`` and never followed);
    ``error`` is set when a directory could not be listed or an entry could not be examined. ``identity`` is a
    local file's ``(st_dev, st_ino)`` at scan time: staging checks that the file it stages is still that one.
    """

    path: str
    kind: EntryKind
    size: int = 0
    error: str | None = None
    identity: tuple[int, int] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    @property
    def depth(self) -> int:
        return 0 if not self.path else self.path.count("/") + 1


#: ``prune(entry) -> True`` stops a scan from entering that directory (e.g. ``.git``, which is excluded anyway).
Prune = Callable[[SourceEntry], bool]


def join(parent: str, name: str) -> str:
    """Relative path of ``name`` inside ``parent`` (``""`` is the root)."""
    return f"{parent}/{name}" if parent else name


@runtime_checkable
class SourceTree(Protocol):
    """The interface the validator and the builder need from a tree of content."""

    @property
    def name(self) -> str:
        """Name of the top folder (the default package name)."""
        ...

    def scan(self, prune: Prune | None = None) -> Iterator[SourceEntry]:
        """Every entry below the root, depth first, siblings sorted by name; the root itself is not yielded.

        A directory for which ``prune(entry)`` is true is yielded but not entered. A directory that
        cannot be listed is yielded with ``error`` set (and not entered).
        """
        ...

    def open(self, path: str) -> BinaryIO:
        """Open a file for binary streaming reads."""
        ...

    def check_readable(self, path: str) -> str | None:
        """``None`` if the file can be read, else why not (e.g. ``Permission denied``)."""
        ...

    def local_path(self, path: str) -> Path | None:
        """A local filesystem path for the entry, or ``None`` if the tree is not local."""
        ...


def folders_above(paths: Iterable[str]) -> set[str]:
    """Every folder that holds one of ``paths``, the root (``""``) included."""
    folders = {""}
    for path in paths:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folders.add("/".join(parts[:depth]))
    return folders


class SubsetTree:
    """A source tree reduced to the files ``keep(path)`` accepts and the folders above them."""

    def __init__(self, tree: SourceTree, keep: Callable[[str], bool]) -> None:
        self.tree = tree
        self.keep = keep

    @property
    def name(self) -> str:
        return self.tree.name

    def scan(self, prune: Prune | None = None) -> Iterator[SourceEntry]:
        entries = [e for e in self.tree.scan(prune) if e.kind == "dir" or self.keep(e.path)]
        folders = folders_above(e.path for e in entries if e.kind != "dir")
        for entry in entries:
            if entry.kind != "dir" or entry.path in folders:
                yield entry

    def open(self, path: str) -> BinaryIO:
        return self.tree.open(path)

    def check_readable(self, path: str) -> str | None:
        return self.tree.check_readable(path)

    def local_path(self, path: str) -> Path | None:
        return self.tree.local_path(path)


class LocalSourceTree:
    """A folder on the local filesystem. Symlinks are reported, never followed."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(f"Package source {self.root} is not a directory")

    def __repr__(self) -> str:
        return f"LocalSourceTree({str(self.root)!r})"

    @property
    def name(self) -> str:
        return self.root.name

    def _abs(self, path: str) -> Path:
        return self.root / path if path else self.root

    def scan(self, prune: Prune | None = None) -> Iterator[SourceEntry]:
        yield from self._children("", self._list(""), prune)

    def _list(self, rel: str) -> list[os.DirEntry[str]]:
        with os.scandir(self._abs(rel)) as listing:
            return sorted(listing, key=lambda e: e.name)

    def _children(self, rel: str, entries: list[os.DirEntry[str]], prune: Prune | None) -> Iterator[SourceEntry]:
        for entry in entries:
            path = join(rel, entry.name)
            try:
                if entry.is_symlink():
                    yield SourceEntry(path, "symlink")
                elif entry.is_dir(follow_symlinks=False):
                    folder = SourceEntry(path, "dir")
                    if prune is not None and prune(folder):
                        yield folder
                        continue
                    try:
                        children = self._list(path)
                    except OSError as exc:
                        yield SourceEntry(path, "dir", error=exc.strerror or str(exc))
                        continue
                    yield folder
                    yield from self._children(path, children, prune)
                elif entry.is_file(follow_symlinks=False):
                    status = entry.stat(follow_symlinks=False)
                    yield SourceEntry(path, "file", status.st_size, identity=(status.st_dev, status.st_ino))
                else:
                    yield SourceEntry(path, "other")
            except OSError as exc:
                yield SourceEntry(path, "other", error=exc.strerror or str(exc))

    def open(self, path: str) -> BinaryIO:
        return open(self._abs(path), "rb")

    def check_readable(self, path: str) -> str | None:
        try:
            fd = os.open(self._abs(path), os.O_RDONLY)
        except OSError as exc:
            return exc.strerror or str(exc)
        os.close(fd)
        return None

    def local_path(self, path: str) -> Path:
        return self._abs(path)


def as_source_tree(source: str | os.PathLike[str] | SourceTree) -> SourceTree:
    """A path becomes a ``LocalSourceTree``; a ``SourceTree`` is returned as is."""
    if isinstance(source, (str, os.PathLike)):
        return LocalSourceTree(source)
    return source
