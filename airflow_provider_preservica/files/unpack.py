"""Unpack a zip from elsewhere (an export) into a folder: all of it or nothing, never over existing content.

The rules, in the order they are checked (nothing is written before all of them pass):

1. Every member name is safe (``archive_members``): no absolute paths, no ``..``, no links or special files,
   no name twice. The error names each offending member.
2. The declared content is at most ``max_ratio`` times the zip's size (a zip bomb is refused unread), and fits
   the free space of the target's disk with ``min_free_bytes`` to spare.
3. The target folder does not exist, or is empty. A target that already holds exactly the zip's files (same
   paths and sizes: an earlier try of the same task unpacked it) is left as it is; any other content is refused
   with an error: nothing is ever overwritten or mixed in.

The zip is unpacked into a new hidden folder next to the target (``.<name>.unpacking-<random>``, same
filesystem), each file created afresh (``O_EXCL | O_NOFOLLOW``) and never allowed to grow past the size its
member declares (a lying header cannot fill the disk). Only when every member is written is that folder
renamed to the target, in one step; on any failure it is removed, so no partial tree is ever left behind.
While it works, the unpack holds a lock on ``.<name>.unpacking-<random>.lock`` beside it: a worker killed
mid-unpack cannot clean up, so the next unpack into the same target removes every such folder whose lock
nobody holds (its process is gone); one still locked belongs to a running unpack and is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_preservica.exceptions import PackageFormatError, UnsafeArchiveError
from airflow_provider_preservica.files.archive_members import (
    MAX_RATIO,
    declared_size,
    ratio_problem,
    relative_name,
    unsafe_members,
)

CHUNK = 1 << 20
#: Room left on the disk after unpacking, by default.
FREE_MARGIN = 64 * 1024 * 1024


@dataclass(frozen=True)
class Unpacked:
    target: Path
    files: int
    bytes: int
    already_there: bool = False  # an earlier try unpacked the same files: left as they were


def _existing_files(target: Path) -> dict[str, int] | None:
    """Relative path -> size of every file below ``target``; ``None`` if it holds anything but files and folders."""
    found: dict[str, int] = {}
    for folder, dirs, names in os.walk(target):
        for name in dirs + names:
            mode = (Path(folder) / name).lstat().st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                return None
        for name in names:
            path = Path(folder) / name
            found[path.relative_to(target).as_posix()] = path.lstat().st_size
    return found


def _check_target(target: Path, files: dict[str, int]) -> bool:
    """True when ``target`` already holds exactly ``files``; False when it is free; raises otherwise."""
    if os.path.islink(target):
        raise UnsafeArchiveError(
            f"unzip_to {target} is a symbolic link: give the real folder (links are not followed when unpacking)"
        )
    if not target.exists():
        return False
    if not target.is_dir():
        raise UnsafeArchiveError(f"unzip_to {target} exists and is not a folder; nothing was unpacked")
    if not any(target.iterdir()):
        return False
    if _existing_files(target) == files:
        return True
    raise UnsafeArchiveError(
        f"unzip_to {target} already holds other files; nothing was unpacked and nothing overwritten. Unpack into "
        "a new or empty folder (for example one named after the run: unzip_to='.../{{ run_id }}'), or empty it"
    )


def _write_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path) -> int:
    """Copy one member into a new file; never more bytes than the member declares."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    written = 0
    with os.fdopen(fd, "wb") as out, archive.open(info) as member:
        while chunk := member.read(CHUNK):
            written += len(chunk)
            if written > info.file_size:
                raise UnsafeArchiveError(
                    f"member {info.filename!r} expands beyond the {info.file_size:,} bytes it declares: "
                    "the zip's header lies (a zip bomb); nothing was unpacked"
                )
            out.write(chunk)
    return written


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on ``path`` (created if missing), or None when someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _remove_abandoned(target: Path) -> None:
    """Remove the work folders of unpacks into ``target`` whose process died (their lock is free)."""
    for lock in target.parent.glob(f".{target.name}.unpacking-*.lock"):
        fd = _try_lock(lock)
        if fd is None:
            continue  # a running unpack
        try:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(lock.with_suffix(""))
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _work_folder(target: Path) -> Iterator[Path]:
    """A new locked work folder beside ``target``; the folder is removed on failure, the lock always."""
    _remove_abandoned(target)
    work = target.parent / f".{target.name}.unpacking-{uuid.uuid4().hex[:12]}"
    lock = work.with_name(work.name + ".lock")
    fd = _try_lock(lock)
    if fd is None:  # a fresh random name: only a clean-up racing us could hold it
        raise UnsafeArchiveError(f"cannot lock {lock} for unpacking; nothing was unpacked")
    try:
        os.mkdir(work)
        try:
            yield work
        except BaseException:
            with contextlib.suppress(OSError):
                shutil.rmtree(work)
            raise
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def unpack_zip(
    zip_path: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    max_ratio: float = MAX_RATIO,
    min_free_bytes: int = FREE_MARGIN,
) -> Unpacked:
    """Unpack ``zip_path`` into ``target`` following the module's rules; :class:`UnsafeArchiveError` otherwise."""
    zip_path = Path(zip_path)
    given = Path(target).expanduser()
    target = given.parent.resolve() / given.name  # the user's own path; only the last step must not be a link
    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
        problems = unsafe_members(infos)
        if problems:
            raise UnsafeArchiveError(f"{zip_path.name} is not unpacked into {target}", problems)
        bomb = ratio_problem(zip_path, infos, max_ratio, zip_path.name)
        if bomb:
            raise UnsafeArchiveError(bomb)
        files = {relative_name(i): i.file_size for i in infos if not i.is_dir()}
        if _check_target(target, files):
            return Unpacked(target, len(files), sum(files.values()), already_there=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        needed = declared_size(infos)
        free = shutil.disk_usage(target.parent).free
        if needed + min_free_bytes > free:
            raise UnsafeArchiveError(
                f"{zip_path.name} declares {needed:,} bytes; only {free / 1048576:,.0f} MiB are free in "
                f"{target.parent} (and {min_free_bytes / 1048576:,.0f} MiB must stay free): nothing was unpacked"
            )
        try:
            with _work_folder(target) as work:
                written = 0
                for info in infos:
                    name = relative_name(info)
                    if info.is_dir():
                        (work / name).mkdir(parents=True, exist_ok=True)
                    elif name:
                        try:
                            written += _write_member(archive, info, work / name)
                        except OSError as exc:
                            raise UnsafeArchiveError(
                                f"member {info.filename!r} cannot be written ({exc.strerror or exc}); "
                                "nothing was unpacked"
                            ) from None
                try:
                    os.rename(work, target)  # replaces an empty folder, atomically
                except OSError as exc:
                    raise UnsafeArchiveError(
                        f"cannot move the unpacked export into {target} ({exc.strerror}): something else wrote "
                        "there meanwhile; nothing was unpacked"
                    ) from None
        except zipfile.BadZipFile as exc:
            raise PackageFormatError(f"{zip_path.name} is damaged ({exc}); nothing was unpacked") from None
    return Unpacked(target, len(files), written)
