"""Streaming fixity: values equal hashlib's, parallel equals serial, memory stays flat for big files."""

from __future__ import annotations

import hashlib
import io
import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_preservica.files.fixity import ALGORITHMS, CHUNK_SIZE, normalize_algorithms
from airflow_provider_preservica.ingest.packaging import (
    FixityError,
    hash_file,
    hash_files,
    hash_stream,
    normalize_algorithm,
)

HASHLIB = {"SHA-256": hashlib.sha256, "SHA-1": hashlib.sha1, "MD5": hashlib.md5, "SHA-512": hashlib.sha512}


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    """Files around the chunk boundary, empty, and a few MiB."""
    sizes = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17, 12345]
    made = []
    for index, size in enumerate(sizes):
        path = tmp_path / f"f{index}.bin"
        path.write_bytes(os.urandom(size))
        made.append(path)
    return made


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_each_algorithm_equals_hashlib(files: list[Path], algorithm: str) -> None:
    for path in files:
        result = hash_file(path, algorithm)
        assert result.size == path.stat().st_size
        assert result.records[0].algorithm == algorithm
        assert result.value(algorithm) == HASHLIB[algorithm](path.read_bytes()).hexdigest()


def test_default_is_sha256_and_several_algorithms_in_one_pass(files: list[Path]) -> None:
    path = files[5]
    assert hash_file(path).records[0].algorithm == "SHA-256"
    result = hash_file(path, ["md5", "SHA256", "sha-1", "SHA-512", "MD5"])
    assert [r.algorithm for r in result.records] == ["MD5", "SHA-256", "SHA-1", "SHA-512"]
    data = path.read_bytes()
    for record in result.records:
        assert record.value == HASHLIB[record.algorithm](data).hexdigest()


def test_algorithm_names() -> None:
    assert normalize_algorithm("sha512") == "SHA-512"
    assert normalize_algorithm(" Sha_1 ") == "SHA-1"
    assert normalize_algorithms("md5") == ("MD5",)
    with pytest.raises(ValueError, match="Unsupported fixity algorithm 'crc32'"):
        normalize_algorithm("crc32")
    with pytest.raises(ValueError):
        normalize_algorithms([])


def test_hash_stream_without_readinto() -> None:
    class Plain:
        def __init__(self, data: bytes) -> None:
            self._io = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self._io.read(n)

    data = os.urandom(CHUNK_SIZE * 2 + 5)
    seen: list[int] = []
    result = hash_stream(Plain(data), "SHA-1", on_bytes=seen.append)  # type: ignore[arg-type]
    assert result.value("SHA-1") == hashlib.sha1(data).hexdigest()
    assert sum(seen) == len(data) and len(seen) == 3


def test_parallel_equals_serial_and_progress_reaches_total(files: list[Path]) -> None:
    calls: list[tuple[int, int]] = []
    parallel = hash_files(files, ["SHA-256", "MD5"], workers=4, progress=lambda d, t: calls.append((d, t)))
    serial = hash_files(files, ["SHA-256", "MD5"], workers=1)
    one_by_one = {p: hash_file(p, ["SHA-256", "MD5"]) for p in files}
    assert parallel == serial == one_by_one
    assert list(parallel) == files  # keyed and ordered as given
    total = sum(p.stat().st_size for p in files)
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_every_unreadable_file_is_named_in_one_error(files: list[Path], tmp_path: Path) -> None:
    missing = [tmp_path / "gone-1.bin", tmp_path / "gone-2.bin"]
    with pytest.raises(FixityError) as caught:
        hash_files([*files, *missing], workers=3)
    assert caught.value.paths == [str(p) for p in missing]
    for path in missing:
        assert str(path) in str(caught.value)


def test_200_mb_file_hashed_with_bounded_memory(tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    """200 MiB (sparse, so the test stays fast): peak Python memory is reported and stays < 50 MB."""
    big = tmp_path / "big.bin"
    size = 200 * 1024 * 1024
    with big.open("wb") as handle:
        handle.write(b"head")
        handle.truncate(size - 4)
        handle.seek(size - 4)
        handle.write(b"tail")
    expected = hashlib.sha256()
    with big.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            expected.update(chunk)

    tracemalloc.start()
    try:
        started = time.perf_counter()
        result = hash_file(big)
        elapsed = time.perf_counter() - started
        _, peak_single = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        parallel = hash_files([big], workers=4)
        _, peak_pool = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == size
    assert result.value() == expected.hexdigest()
    assert parallel[big] == result
    rate = size / elapsed / 1e6
    print(f"\n200 MiB sparse file: SHA-256 {rate:.0f} MB/s, peak traced memory {peak_single / 1e6:.2f} MB")
    print(f"same file through the thread pool: peak traced memory {peak_pool / 1e6:.2f} MB")
    record_property("sha256_mb_per_s", round(rate))
    record_property("peak_traced_mb", round(peak_single / 1e6, 2))
    assert peak_single < 50e6
    assert peak_pool < 50e6
