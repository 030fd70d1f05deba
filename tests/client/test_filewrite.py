"""DropBehindWriter: a multi-gigabyte export must not fill the worker's page cache, and must arrive intact.

Page-cache residency is read with ``mincore(2)`` on a shared read-only mapping of the file, through ctypes:
the kernel's own answer, not a figure our code computes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import random
from pathlib import Path
from typing import BinaryIO

import pytest

from airflow_provider_preservica.client.filewrite import DropBehindWriter

MiB = 1024 * 1024
WINDOW = 2 * MiB
FILE_SIZE = 48 * MiB

pytestmark = pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="posix_fadvise is Linux/Unix only")


def _resident_bytes(path: Path) -> int:
    """Bytes of ``path`` in the page cache right now (``mincore`` over a shared mapping)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = path.stat().st_size
    page = mmap.PAGESIZE
    pages = (size + page - 1) // page
    descriptor = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, descriptor, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        try:
            vector = (ctypes.c_ubyte * pages)()
            if libc.mincore(address, size, vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
            return sum(1 for flag in vector if flag & 1) * page
        finally:
            libc.munmap(address, size)
    finally:
        os.close(descriptor)


def _chunks(seed: int) -> list[bytes]:
    """FILE_SIZE bytes in irregular chunk sizes (1 byte to 3 MiB), as a network read loop delivers them."""
    rng = random.Random(seed)
    chunks, total = [], 0
    while total < FILE_SIZE:
        size = min(rng.choice([1, 4095, 65_536, 1 * MiB, 3 * MiB - 7]), FILE_SIZE - total)
        chunks.append(rng.randbytes(size))
        total += size
    return chunks


def _flush_to_disk(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _can_drop_pages(directory: Path) -> bool:
    """Whether this filesystem lets written pages go (tmpfs keeps them: they are the file)."""
    probe = directory / "probe.bin"
    with probe.open("wb") as handle:
        handle.write(os.urandom(4 * MiB))
        _flush_to_disk(handle)
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    resident = _resident_bytes(probe)
    probe.unlink()
    return resident < 2 * MiB


def test_the_file_is_exact_whatever_the_chunk_sizes(tmp_path: Path) -> None:
    chunks = _chunks(seed=5)
    path = tmp_path / "export.zip"
    with path.open("wb") as handle:
        writer = DropBehindWriter(handle, window=WINDOW)
        for chunk in chunks:
            writer.write(memoryview(chunk))
        writer.finish()
    assert writer.position == FILE_SIZE
    assert path.read_bytes() == b"".join(chunks)


def test_a_finished_download_is_on_disk_and_not_left_in_the_page_cache(tmp_path: Path) -> None:
    if not _can_drop_pages(tmp_path):
        pytest.skip(f"the filesystem of {tmp_path} keeps written pages in memory (tmpfs?): nothing to drop")
    chunks = _chunks(seed=11)

    plain = tmp_path / "plain.bin"
    with plain.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
        _flush_to_disk(handle)
    dropped = tmp_path / "dropped.bin"
    with dropped.open("wb") as handle:
        writer = DropBehindWriter(handle, window=WINDOW)
        for chunk in chunks:
            writer.write(chunk)
        writer.finish()

    # The plain loop is what every other client does: the whole file stays cached (the control that shows
    # the measurement sees cached pages at all).
    assert _resident_bytes(plain) > FILE_SIZE * 0.9
    # Ours: once finished, the file is on disk and no longer in the cache (a few pages may be read back in).
    assert _resident_bytes(dropped) <= WINDOW
    assert dropped.read_bytes() == plain.read_bytes()


def test_a_writer_that_starts_mid_file_keeps_the_earlier_bytes(tmp_path: Path) -> None:
    """A resumed download appends to the partial file: the part already on disk must not be touched."""
    path = tmp_path / "resumed.zip"
    head = os.urandom(5 * MiB + 3)
    path.write_bytes(head)
    tail = os.urandom(9 * MiB)
    with path.open("ab") as handle:
        writer = DropBehindWriter(handle, window=WINDOW)
        assert writer.position == len(head)
        for start in range(0, len(tail), MiB):
            writer.write(tail[start : start + MiB])
        writer.finish()
    assert path.read_bytes() == head + tail
