"""Offline packaging fixtures: small source trees on disk or in memory, and trees that swap a file for a link."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from airflow_provider_preservica.ingest.packaging import LocalSourceTree
from airflow_provider_preservica.ingest.packaging.source import Prune, SourceEntry


def make(root: Path, files: dict[str, bytes | None]) -> Path:
    """``files`` under ``root`` (``None`` makes a folder)."""
    for rel, data in files.items():
        path = root / rel
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return root


def accession_42(tmp_path: Path) -> Path:
    """The builder tests' source: a letter, photos in a sub-folder and a nested one, and a junk file."""
    return make(
        tmp_path / "accession-42",
        {
            "letter.pdf": b"%PDF-1.7 letter",
            "photos/img001.tif": b"II*\x00" + b"\x01" * 5000,
            "photos/img002.tif": b"II*\x00" + b"\x02" * 70,
            "photos/negatives/neg01.tif": b"II*\x00neg",
            "photos/.DS_Store": b"junk",
        },
    )


class InMemoryTree:
    """A non-local source tree (as an object-storage tree would be): only ``scan`` and ``open``."""

    def __init__(self, name: str, files: dict[str, bytes]) -> None:
        self._name = name
        self.files = files

    @property
    def name(self) -> str:
        return self._name

    def scan(self, prune: Any = None) -> Iterator[SourceEntry]:
        folders = sorted({"/".join(p.split("/")[:i]) for p in self.files for i in range(1, p.count("/") + 1)})
        entries = [SourceEntry(f, "dir") for f in folders] + [
            SourceEntry(p, "file", len(d)) for p, d in self.files.items()
        ]
        yield from sorted(entries, key=lambda e: e.path.split("/"))

    def open(self, path: str) -> BinaryIO:
        return io.BytesIO(self.files[path])

    def check_readable(self, path: str) -> str | None:
        return None

    def local_path(self, path: str) -> Path | None:
        return None


SECRET = b"an outside file that must never reach a package\n"


class Swap:
    """Swap ``victim`` (a file or folder) for a symlink to ``outside`` and back, keeping the original inode."""

    def __init__(self, victim: Path, outside: Path, replacement: bytes | None = None) -> None:
        self.victim, self.outside, self.replacement = victim, outside, replacement
        self.aside = victim.with_name(f".{victim.name}.aside")

    def apply(self) -> None:
        os.rename(self.victim, self.aside)
        if self.replacement is None:
            self.victim.symlink_to(self.outside)
        else:
            self.victim.write_bytes(self.replacement)  # another regular file, same size: only its inode differs

    def undo(self) -> None:
        if os.path.lexists(self.aside):
            os.unlink(self.victim)
            os.rename(self.aside, self.victim)


class SwappingTree(LocalSourceTree):
    """A local tree whose every scan is followed by the swap (undone when the next scan starts)."""

    swap: Swap

    def scan(self, prune: Prune | None = None) -> Iterator[SourceEntry]:
        self.swap.undo()
        yield from super().scan(prune)
        self.swap.apply()


def swapping(source: Path, victim: str, target: str, replacement: bytes | None = None) -> SwappingTree:
    tree = SwappingTree(source)
    tree.swap = Swap(source / victim, source.parent / target, replacement)
    return tree


def packaged_bytes(output: Path) -> bytes:
    found = b""
    for path in output.rglob("*"):
        if path.is_file() and path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                found += b"".join(archive.read(name) for name in archive.namelist())
        elif path.is_file():
            found += path.read_bytes()
    return found
