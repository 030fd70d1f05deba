"""What a zip from elsewhere may hold before anything reads or unpacks it: safe member names, no links, sane sizes.

An export (or any zip handed over) is data from elsewhere. Its member names and types are checked before a
byte is written: an absolute name (``/etc/x``, ``C:\\x``), a ``..`` component, a symbolic link or another
special file, a NUL byte or a name given twice could write outside the target folder or replace what an
earlier member wrote. Its declared sizes are checked against its own size (a *ratio*: a 1 MB zip declaring
1 GiB is a zip bomb, whatever the disk holds) before any member is decompressed.

Preservica's exports hold PAX zips stored as they are and deflated XML, so their ratio is close to 1; the
default cap (``MAX_RATIO`` times the zip's size, and never less than ``RATIO_FLOOR``) leaves a wide margin.
"""

from __future__ import annotations

import posixpath
import re
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path

#: Uncompressed bytes a zip may declare per byte of its own size.
MAX_RATIO = 100
#: ... and never less than this, so that small zips of XML are not judged by their ratio.
RATIO_FLOOR = 64 * 1024 * 1024

_DRIVE = re.compile(r"^[A-Za-z]:")
_SPECIAL = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why ``info`` must not be unpacked (``None``: it may), in words that name the member."""
    name = info.filename
    shown = repr(name)
    if not name or "\x00" in name:
        return f"member {shown} has an empty name or a NUL byte in it"
    kind = _SPECIAL.get(stat.S_IFMT(info.external_attr >> 16))
    if kind is not None:
        return f"member {shown} is {kind}: links and special files are refused (they can point outside the folder)"
    normal = name.replace("\\", "/")
    if normal.startswith("/") or _DRIVE.match(normal):
        return f"member {shown} has an absolute path: it would be written outside the target folder"
    if ".." in normal.split("/"):
        return f"member {shown} climbs out with '..': it would be written outside the target folder"
    return None


def relative_name(info: zipfile.ZipInfo) -> str:
    """The member's path below the target folder, normalised (``a/./b/`` -> ``a/b``). Check it first."""
    return posixpath.normpath(info.filename.replace("\\", "/")).strip("/")


def unsafe_members(infos: Iterable[zipfile.ZipInfo]) -> list[str]:
    """Every problem of every member (names, types, duplicates), in archive order."""
    problems: list[str] = []
    seen: set[str] = set()
    for info in infos:
        problem = member_problem(info)
        if problem is not None:
            problems.append(problem)
            continue
        name = relative_name(info)
        if name in seen and not info.is_dir():
            problems.append(f"member {info.filename!r} appears twice: the second would replace the first")
        seen.add(name)
    return problems


def declared_size(infos: Iterable[zipfile.ZipInfo]) -> int:
    return sum(info.file_size for info in infos)


def ratio_problem(
    zip_path: str | Path, infos: Iterable[zipfile.ZipInfo], max_ratio: float = MAX_RATIO, what: str = "zip"
) -> str | None:
    """A zip-bomb finding when the members declare more than ``max_ratio`` times the zip's own size."""
    size = Path(zip_path).stat().st_size
    return size_ratio_problem(size, declared_size(infos), max_ratio, what or Path(zip_path).name)


def size_ratio_problem(packed: int, declared: int, max_ratio: float = MAX_RATIO, what: str = "zip") -> str | None:
    """The same for a zip of ``packed`` bytes whose members declare ``declared`` bytes."""
    limit = max(int(packed * max_ratio), RATIO_FLOOR)
    if declared <= limit:
        return None
    return (
        f"{what} declares {declared:,} bytes of content in {packed:,} bytes (more than {max_ratio:g} times its "
        f"size): refused as a zip bomb, nothing of it was unpacked or read"
    )
