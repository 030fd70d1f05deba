"""Objects and multipart uploads behind the S3-compatible endpoint, kept on disk.

Bytes live in files under ``root`` (``<data_dir>/uploads`` or a temporary directory); only metadata is
in memory. An object is a list of files: one for a PutObject, the part files for a completed multipart
upload (ingest joins them when it reads the package, so CompleteMultipartUpload answers at once).
ETags are S3's: the MD5 of the bytes, or for a multipart object the MD5 of the parts' binary MD5s
followed by ``-<number of parts>``. Uploads are not kept across restarts.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from .s3_wire import S3Error

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB
MAX_PART_NUMBER = 10_000


@dataclass
class StoredObject:
    bucket: str
    key: str
    files: list[Path]
    size: int
    etag: str  # without quotes
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str = "binary/octet-stream"
    last_modified: float = 0.0
    #: Progress token of the ingest this object started (package bucket only).
    progress_token: str | None = None

    def open(self) -> BinaryIO:
        """The bytes as one seekable stream (a multipart object reads its part files in turn)."""
        if len(self.files) == 1:
            return open(self.files[0], "rb")
        return cast(BinaryIO, io.BufferedReader(_JoinedReader(self.files), 1 << 20))


class _JoinedReader(io.RawIOBase):
    """Several files read as one, with ``seek`` (``zipfile`` reads a multipart package in place)."""

    def __init__(self, files: list[Path]) -> None:
        super().__init__()
        self._paths = list(files)
        sizes = [path.stat().st_size for path in self._paths]
        self._starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self._sizes = sizes
        self._total = sum(sizes)
        self._pos = 0
        self._index = -1
        self._handle: io.BufferedReader | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._total}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._total:
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        if index != self._index or self._handle is None:
            if self._handle is not None:
                self._handle.close()
            self._handle = open(self._paths[index], "rb")  # noqa: SIM115  (kept for the next read; closed by close)
            self._index = index
        offset = self._pos - self._starts[index]
        view = memoryview(buffer).cast("B")[: self._sizes[index] - offset]
        self._handle.seek(offset)
        count = self._handle.readinto(view)
        self._pos += count
        return count

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        super().close()


@dataclass
class Part:
    number: int
    path: Path
    size: int
    etag: str
    last_modified: float


@dataclass
class MultipartUpload:
    upload_id: str
    bucket: str
    key: str
    directory: Path
    metadata: dict[str, str]
    content_type: str
    initiated: float
    owner: str
    parts: dict[int, Part] = field(default_factory=dict)


class BodyWriter:
    """Writes one request body to a file while hashing it (MD5 always, SHA-256 when asked)."""

    def __init__(self, path: Path, sha256: bool) -> None:
        self.path = path
        self.size = 0
        self._md5 = hashlib.md5()
        self._sha256 = hashlib.sha256() if sha256 else None
        self._file = open(path, "wb")  # noqa: SIM115  (written across many calls; closed by close/discard)

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._md5.update(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        self.size += len(data)

    def close(self) -> None:
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    @property
    def md5_digest(self) -> bytes:
        return self._md5.digest()

    @property
    def sha256(self) -> str | None:
        return self._sha256.hexdigest() if self._sha256 is not None else None


class ObjectStore:
    """Objects by ``(bucket, key)`` and multipart uploads by id. Thread-safe."""

    def __init__(self, data_dir: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._data_dir = data_dir
        self._temp_root: Path | None = None
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str], StoredObject] = {}
        self._uploads: dict[str, MultipartUpload] = {}

    # ----------------------------------------------------------------- disk
    @property
    def root(self) -> Path:
        with self._lock:
            if self._data_dir is not None:
                path = self._data_dir / "uploads"
            else:
                if self._temp_root is None or not self._temp_root.exists():
                    self._temp_root = Path(tempfile.mkdtemp(prefix="preservica-sandbox-uploads-"))
                path = self._temp_root
        path.mkdir(parents=True, exist_ok=True)
        return path

    def new_path(self, suffix: str = "") -> Path:
        return self.root / f"{uuid.uuid4().hex}{suffix}"

    def remove_files(self, obj: StoredObject) -> None:
        """Remove an object's bytes (after it was replaced or deleted)."""
        self._remove_files(obj.files)

    @staticmethod
    def _remove_files(files: list[Path]) -> None:
        for path in files:
            with contextlib.suppress(OSError):
                path.unlink()

    # ----------------------------------------------------------------- objects
    def put(self, obj: StoredObject) -> StoredObject | None:
        """Store ``obj``; returns the object it replaced (whose files the caller may remove)."""
        obj.last_modified = obj.last_modified or self.clock()
        with self._lock:
            previous = self._objects.get((obj.bucket, obj.key))
            self._objects[(obj.bucket, obj.key)] = obj
        return previous

    def get(self, bucket: str, key: str) -> StoredObject | None:
        with self._lock:
            return self._objects.get((bucket, key))

    def objects(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        with self._lock:
            found = [o for (b, k), o in self._objects.items() if b == bucket and k.startswith(prefix)]
        return sorted(found, key=lambda o: o.key)

    def delete(self, bucket: str, key: str, keep_files: bool = False) -> StoredObject | None:
        """Forget an object; its files are removed unless ``keep_files`` (an ingest still reading them)."""
        with self._lock:
            obj = self._objects.pop((bucket, key), None)
        if obj is not None and not keep_files:
            self._remove_files(obj.files)
        return obj

    def release(self, obj: StoredObject) -> None:
        """Remove the files of an object that is no longer listed (or forget it and remove them)."""
        with self._lock:
            if self._objects.get((obj.bucket, obj.key)) is obj:
                del self._objects[(obj.bucket, obj.key)]
        self._remove_files(obj.files)
        if obj.files and obj.files[0].parent.name.startswith("mpu-"):
            shutil.rmtree(obj.files[0].parent, ignore_errors=True)

    # ----------------------------------------------------------------- multipart
    def create_upload(
        self, bucket: str, key: str, metadata: dict[str, str], content_type: str, owner: str
    ) -> MultipartUpload:
        upload_id = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        directory = self.root / f"mpu-{upload_id}"
        directory.mkdir()
        upload = MultipartUpload(upload_id, bucket, key, directory, metadata, content_type, self.clock(), owner)
        with self._lock:
            self._uploads[upload_id] = upload
        return upload

    def upload(self, upload_id: str, bucket: str, key: str) -> MultipartUpload:
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None or upload.bucket != bucket or upload.key != key:
            raise S3Error(
                404,
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
                "aborted or completed.",
                UploadId=upload_id,
            )
        return upload

    def part_path(self, upload: MultipartUpload, number: int) -> Path:
        return upload.directory / f"part-{number:05d}.{uuid.uuid4().hex[:8]}"

    def add_part(self, upload: MultipartUpload, part: Part) -> None:
        with self._lock:
            old = upload.parts.get(part.number)
            upload.parts[part.number] = part
            # the upload may have been aborted or completed while the part was arriving
            orphaned = self._uploads.get(upload.upload_id) is not upload
        if old is not None and old.path != part.path:
            self._remove_files([old.path])
        if orphaned:
            self._remove_files([part.path])
            raise S3Error(404, "NoSuchUpload", "The upload was aborted or completed while this part arrived.")

    def complete(self, upload: MultipartUpload, wanted: list[tuple[int, str]]) -> StoredObject:
        """Assemble the parts named in the request (number, ETag), checking S3's rules."""
        if not wanted:
            raise S3Error(400, "MalformedXML", "CompleteMultipartUpload needs at least one Part")
        numbers = [n for n, _ in wanted]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise S3Error(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        with self._lock:
            if self._uploads.get(upload.upload_id) is not upload:
                raise S3Error(404, "NoSuchUpload", "The specified upload does not exist.", UploadId=upload.upload_id)
            chosen: list[Part] = []
            for number, etag in wanted:
                part = upload.parts.get(number)
                if part is None or part.etag != etag.strip().strip('"').lower():
                    raise S3Error(
                        400,
                        "InvalidPart",
                        "One or more of the specified parts could not be found or its ETag did not match.",
                        PartNumber=str(number),
                    )
                chosen.append(part)
            for part in chosen[:-1]:
                if part.size < MIN_PART_SIZE:
                    raise S3Error(
                        400,
                        "EntityTooSmall",
                        "Your proposed upload is smaller than the minimum allowed size (5 MiB for all parts "
                        "but the last).",
                        PartNumber=str(part.number),
                        ProposedSize=str(part.size),
                        MinSizeAllowed=str(MIN_PART_SIZE),
                    )
            del self._uploads[upload.upload_id]
            unused = [p.path for n, p in upload.parts.items() if n not in set(numbers)]
        self._remove_files(unused)
        digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in chosen)).hexdigest()
        return StoredObject(
            bucket=upload.bucket,
            key=upload.key,
            files=[p.path for p in chosen],
            size=sum(p.size for p in chosen),
            etag=f"{digest}-{len(chosen)}",
            metadata=dict(upload.metadata),
            content_type=upload.content_type,
            last_modified=self.clock(),
        )

    def abort(self, upload: MultipartUpload) -> None:
        with self._lock:
            self._uploads.pop(upload.upload_id, None)
        shutil.rmtree(upload.directory, ignore_errors=True)

    def uploads(self, bucket: str) -> Iterator[MultipartUpload]:
        with self._lock:
            found = [u for u in self._uploads.values() if u.bucket == bucket]
        yield from found

    # ----------------------------------------------------------------- lifecycle
    def clear(self) -> None:
        """Forget every object and upload and remove their files."""
        with self._lock:
            objects = list(self._objects.values())
            uploads = list(self._uploads.values())
            self._objects.clear()
            self._uploads.clear()
        for obj in objects:
            self._remove_files(obj.files)
        for upload in uploads:
            shutil.rmtree(upload.directory, ignore_errors=True)

    def close(self) -> None:
        self.clear()
        with self._lock:
            temp, self._temp_root = self._temp_root, None
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
        elif self._data_dir is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self._data_dir / "uploads")
