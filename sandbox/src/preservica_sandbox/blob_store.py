"""Bitstream bytes on disk: ``<data_dir>/blobs`` or a temporary directory, one file per stored bitstream.

Bytes never live in memory: ``store`` streams a file (or a binary file object) into the directory in
1 MiB chunks while computing every fixity the repository records (``FIXITY_ALGORITHMS``). A
``Bitstream.location`` is the file's name relative to the directory (or an absolute path). Without a
data directory the temporary directory is made on first use and removed by ``close``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from .entities import FIXITY_ALGORITHMS, Bitstream

BLOB_DIR = "blobs"
CHUNK_SIZE = 1 << 20


class BlobStore:
    """Where the bytes of one repository's bitstreams live. Thread-safe under ``lock``."""

    def __init__(self, data_dir: Path | None, lock: threading.RLock) -> None:
        self.data_dir = data_dir
        self.lock = lock
        self._temp_dir: Path | None = None

    @property
    def directory(self) -> Path:
        """``<data_dir>/blobs`` or a temporary directory (created on first use)."""
        with self.lock:
            if self.data_dir is not None:
                path = self.data_dir / BLOB_DIR
            else:
                if self._temp_dir is None or not self._temp_dir.exists():
                    self._temp_dir = Path(tempfile.mkdtemp(prefix="preservica-sandbox-blobs-"))
                path = self._temp_dir
            path.mkdir(parents=True, exist_ok=True)
            return path

    def path(self, bitstream: Bitstream) -> Path | None:
        """The file holding a bitstream's bytes, or ``None`` when no bytes are stored."""
        if bitstream.location is None:
            return None
        path = Path(bitstream.location)
        return path if path.is_absolute() else self.directory / path

    def store(self, source: str | os.PathLike[str] | BinaryIO, filename: str, move: bool = False) -> Bitstream:
        """Copy (or move) bytes into the directory; returns a ``Bitstream`` with size and fixities.

        ``source`` is a path or a binary file object; it is read in chunks, never whole.
        """
        target_dir = self.directory
        name = uuid.uuid4().hex
        target = target_dir / name
        hashes = {alg: hashlib.new(py) for alg, py in FIXITY_ALGORITHMS.items()}
        size = 0
        if move and isinstance(source, str | os.PathLike):
            shutil.move(os.fspath(source), target)
            with open(target, "rb") as handle:
                size = _hash_stream(handle, hashes)
        else:
            with contextlib.ExitStack() as stack:
                reader: BinaryIO = (
                    stack.enter_context(open(source, "rb")) if isinstance(source, str | os.PathLike) else source
                )
                with open(target, "wb") as out:
                    while chunk := reader.read(CHUNK_SIZE):
                        out.write(chunk)
                        size += len(chunk)
                        for digest in hashes.values():
                            digest.update(chunk)
        return Bitstream(filename, size, {alg: h.hexdigest() for alg, h in hashes.items()}, name)

    def close(self) -> None:
        """Remove the temporary directory (a data directory's blobs stay)."""
        with self.lock:
            if self._temp_dir is not None:
                shutil.rmtree(self._temp_dir, ignore_errors=True)
                self._temp_dir = None


def _hash_stream(handle: BinaryIO, hashes: dict[str, Any]) -> int:
    size = 0
    while chunk := handle.read(CHUNK_SIZE):
        size += len(chunk)
        for digest in hashes.values():
            digest.update(chunk)
    return size
