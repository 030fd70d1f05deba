"""Streaming checksums, one file or many in parallel.

Files are read in 1 MiB chunks into one reused buffer per file, so memory does not grow with file size.
Several files are hashed at once by a thread pool: ``hashlib`` releases the GIL while it digests a
buffer, and reads release it too, so threads use every core without the cost of processes.

Algorithm names are the ones OPEX writes in ``Fixity/@type``: ``SHA-256`` (default), ``SHA-1``, ``MD5``
and ``SHA-512``. Values are lowercase hex.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from airflow_provider_preservica.exceptions import FixityError


@dataclass(frozen=True, slots=True)  # one per file: no per-instance dict
class FixityRecord:
    """A checksum as OPEX names it: ``algorithm`` is ``SHA-256``, ``SHA-1``, ``MD5`` or ``SHA-512``."""

    algorithm: str
    value: str


CHUNK_SIZE = 1 << 20  # 1 MiB
DEFAULT_ALGORITHM = "SHA-256"

#: OPEX ``Fixity/@type`` -> ``hashlib`` name.
ALGORITHMS: dict[str, str] = {"SHA-256": "sha256", "SHA-1": "sha1", "MD5": "md5", "SHA-512": "sha512"}

_ALIASES = {name.replace("-", "").lower(): name for name in ALGORITHMS}

#: ``progress(bytes_done, bytes_total)``; called from worker threads, one call at a time.
ProgressCallback = Callable[[int, int], None]
Algorithms = str | Sequence[str]


def normalize_algorithm(name: str) -> str:
    """``sha256``, ``SHA256``, ``sha-256`` -> ``SHA-256``; anything unsupported raises ``ValueError``."""
    key = name.strip().replace("-", "").replace("_", "").lower()
    if key not in _ALIASES:
        raise ValueError(f"Unsupported fixity algorithm {name!r}: use one of {', '.join(ALGORITHMS)}")
    return _ALIASES[key]


#: The one algorithm a file is checked with when several are declared: SHA-256 first (strong, and the fastest
#: with the CPU's SHA extensions), MD5 last.
PREFERENCE = ("SHA-256", "SHA-512", "SHA-1", "MD5")


def known_fixities(declared: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``(algorithm as declared, value)`` pairs -> ``{OPEX name: lowercase hex}``, leaving out algorithms this
    provider cannot compute (Preservica may declare others)."""
    known: dict[str, str] = {}
    for name, value in declared:
        try:
            known[normalize_algorithm(name)] = value.strip().lower()
        except ValueError:
            continue
    return known


def preferred_fixity(fixities: dict[str, str]) -> tuple[str, str] | None:
    """The ``(algorithm, value)`` to check, by :data:`PREFERENCE`, from :func:`known_fixities`' result."""
    return next(((a, fixities[a]) for a in PREFERENCE if a in fixities), None)


def normalize_algorithms(algorithms: Algorithms) -> tuple[str, ...]:
    """One name or several -> OPEX names without duplicates, order kept (the first is the primary)."""
    names = [algorithms] if isinstance(algorithms, str) else list(algorithms)
    if not names:
        raise ValueError("At least one fixity algorithm is needed")
    return tuple(dict.fromkeys(normalize_algorithm(n) for n in names))


@dataclass(frozen=True, slots=True)  # one per file: no per-instance dict
class FileFixity:
    """Size read and checksum(s) of one file, in the order the algorithms were asked for."""

    size: int
    records: tuple[FixityRecord, ...]

    def value(self, algorithm: str = DEFAULT_ALGORITHM) -> str:
        wanted = normalize_algorithm(algorithm)
        for record in self.records:
            if record.algorithm == wanted:
                return record.value
        raise KeyError(f"{wanted} was not computed for this file")


def hash_stream(
    stream: BinaryIO,
    algorithms: Algorithms = DEFAULT_ALGORITHM,
    *,
    chunk_size: int = CHUNK_SIZE,
    on_bytes: Callable[[int], None] | None = None,
) -> FileFixity:
    """Hash a binary stream to its end in ``chunk_size`` reads; ``on_bytes(n)`` after each chunk."""
    names = normalize_algorithms(algorithms)
    hashers = [hashlib.new(ALGORITHMS[n]) for n in names]
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    size = 0
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buffer)
            if not n:
                break
            chunk: bytes | memoryview = view[:n]
        else:
            data = stream.read(chunk_size)
            if not data:
                break
            n = len(data)
            chunk = data
        for hasher in hashers:
            hasher.update(chunk)
        size += n
        if on_bytes is not None:
            on_bytes(n)
    return FileFixity(size, tuple(FixityRecord(name, h.hexdigest()) for name, h in zip(names, hashers, strict=True)))


def hash_file(
    path: str | os.PathLike[str],
    algorithms: Algorithms = DEFAULT_ALGORITHM,
    *,
    chunk_size: int = CHUNK_SIZE,
    on_bytes: Callable[[int], None] | None = None,
) -> FileFixity:
    """Hash one file, streaming (never the whole file in memory)."""
    with open(path, "rb", buffering=0) as stream:
        return hash_stream(stream, algorithms, chunk_size=chunk_size, on_bytes=on_bytes)


def default_workers() -> int:
    """One thread per core plus two, so that a thread waiting on the disk does not leave a core idle."""
    return min(32, (os.cpu_count() or 1) + 2)


def hash_files(
    paths: Iterable[str | os.PathLike[str]],
    algorithms: Algorithms = DEFAULT_ALGORITHM,
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> dict[Path, FileFixity]:
    """Hash many files in parallel; returns ``{Path(p): FileFixity}`` for every path given.

    Largest files start first (the batch ends sooner). ``progress(done, total)`` counts bytes; total is
    the sum of the sizes when hashing starts. Every file that cannot be read is named in one
    ``FixityError`` (the others are still hashed first, so one error lists them all).
    """
    names = normalize_algorithms(algorithms)
    unique = list(dict.fromkeys(Path(p) for p in paths))
    sizes: dict[Path, int] = {}
    failures: dict[Path, str] = {}
    for path in unique:
        try:
            sizes[path] = path.stat().st_size
        except OSError as exc:
            failures[path] = exc.strerror or str(exc)
    total = sum(sizes.values())
    lock = threading.Lock()
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        with lock:
            done += n
            if progress is not None:
                progress(done, total)

    results: dict[Path, FileFixity] = {}
    order = sorted(sizes, key=lambda p: sizes[p], reverse=True)
    count = workers or default_workers()
    if count <= 1 or len(order) <= 1:
        for path in order:
            try:
                results[path] = hash_file(path, names, chunk_size=chunk_size, on_bytes=advance)
            except OSError as exc:
                failures[path] = exc.strerror or str(exc)
    else:
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="fixity") as pool:
            futures = {pool.submit(hash_file, p, names, chunk_size=chunk_size, on_bytes=advance): p for p in order}
            for future, path in futures.items():
                try:
                    results[path] = future.result()
                except OSError as exc:
                    failures[path] = exc.strerror or str(exc)
    if failures:
        listing = "\n".join(f"  - {p}: {why}" for p, why in sorted(failures.items()))
        raise FixityError(
            f"{len(failures)} file(s) could not be hashed (check they exist and are readable):\n{listing}",
            [str(p) for p in sorted(failures)],
        )
    return {path: results[path] for path in unique}
