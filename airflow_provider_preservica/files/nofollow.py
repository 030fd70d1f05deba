"""Stage one scanned source file without following links: the file staged is the file the scan saw, or nothing.

A delivery is data from elsewhere, and it can change between the scan and staging. A file swapped for a
symbolic link meanwhile (or a folder above it swapped for one) must not bring an outside file's bytes into the
package. So staging walks from the tree's root one folder at a time, opening each with ``O_NOFOLLOW``; a hard
link is made with ``linkat`` without following (it would link the symlink itself, which is then refused); a
copy reads from a descriptor opened with ``O_NOFOLLOW``. Either way the staged file must be a regular file
whose device and inode are the ones the scan recorded (``SourceEntry.identity``): a file replaced by another
one is refused too. The fixity is then computed from the staged file, never from the source path again.
``open_file`` opens a source file the same way, for a package written straight into a zip (no staging).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

from airflow_provider_preservica.exceptions import SourceChangedError

CHUNK = 1 << 20
#: A hard link is impossible here (another filesystem, not allowed): copy instead.
LINK_FALLBACK = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES, errno.ENOSYS})
_REPLACED = frozenset({errno.ELOOP, errno.ENOTDIR, errno.ENOENT})
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # a FIFO would block


def _changed(path: str, how: str) -> SourceChangedError:
    return SourceChangedError(
        f"{path} {how} after the source was scanned; nothing was staged from it (links are never followed). "
        "Run again once the delivery is complete and stable.",
        [path],
    )


def _open_parent(root: Path, path: str) -> int:
    """A descriptor of the folder holding ``path`` (relative to ``root``), reached without following any link."""
    fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)  # the tree's root: resolved when the tree was made
    try:
        for part in path.split("/")[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in _REPLACED:
                    raise _changed(path, f"no longer lies in a real folder (folder {part!r} was replaced)") from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check(path: str, status: os.stat_result, identity: tuple[int, int] | None) -> None:
    if stat.S_ISLNK(status.st_mode):
        raise _changed(path, "was replaced by a symbolic link")
    if not stat.S_ISREG(status.st_mode):
        raise _changed(path, "is no longer a regular file")
    if identity is not None and (status.st_dev, status.st_ino) != identity:
        raise _changed(path, "was replaced by another file")


def _copy(reader: BinaryIO, writer: BinaryIO) -> None:
    """In the kernel where it can (``sendfile``), else through a buffer."""
    offset = 0
    try:
        while sent := os.sendfile(writer.fileno(), reader.fileno(), offset, 64 * CHUNK):
            offset += sent
        return
    except OSError as exc:
        if offset or exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise
    shutil.copyfileobj(reader, writer, CHUNK)


def open_file(root: Path, path: str, *, identity: tuple[int, int] | None) -> BinaryIO:
    """Open ``root/path`` for reading (unbuffered) without following any link, as ``stage_file`` would copy it.

    Raises ``SourceChangedError`` when the file is not, or no longer, the regular file the scan saw (``identity``).
    """
    parent = _open_parent(root, path)
    try:
        try:
            source = os.open(path.rsplit("/", 1)[-1], _FILE_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in _REPLACED:
                raise _changed(path, "was replaced by a symbolic link or vanished") from None
            raise
    finally:
        os.close(parent)
    reader = os.fdopen(source, "rb", buffering=0)
    try:
        _check(path, os.fstat(reader.fileno()), identity)
    except BaseException:
        reader.close()
        raise
    return reader


def stage_file(root: Path, path: str, target: Path, *, link: bool, identity: tuple[int, int] | None) -> str:
    """Hard-link (``link``; a copy where links are impossible) or copy ``root/path`` to ``target``.

    Returns ``"linked"`` or ``"copied"``; raises ``SourceChangedError`` (and leaves no ``target``) when the file
    is not, or no longer, the regular file the scan saw (``identity``: its ``(st_dev, st_ino)``).
    """
    parent = _open_parent(root, path)
    name = path.rsplit("/", 1)[-1]
    try:
        if link:
            try:
                os.link(name, target, src_dir_fd=parent, follow_symlinks=False)
            except OSError as exc:
                if exc.errno in _REPLACED - {errno.ENOTDIR}:
                    raise _changed(path, "vanished") from None
                if exc.errno not in LINK_FALLBACK:
                    raise
            else:
                try:
                    _check(path, os.lstat(target), identity)
                except SourceChangedError:
                    target.unlink()
                    raise
                return "linked"
        try:
            source = os.open(name, _FILE_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in _REPLACED:
                raise _changed(path, "was replaced by a symbolic link or vanished") from None
            raise
        with os.fdopen(source, "rb") as reader:
            status = os.fstat(reader.fileno())
            _check(path, status, identity)
            out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
            with os.fdopen(out, "wb") as writer:
                _copy(reader, writer)
        os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns), follow_symlinks=False)
        return "copied"
    finally:
        os.close(parent)
