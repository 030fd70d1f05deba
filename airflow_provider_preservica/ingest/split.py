"""Split a large delivery into several packages, by bytes and by asset count, without changing any identity.

Why the limits, and why these defaults (``../shared/reference``):

- Preservica's guidance is per package: "edition size limits still apply per package" for OPEX ingest
  (users-and-peers.md §4.1, community guide to OPEX ingest), and the ingest queue absorbs many packages
  ("never rejects" extra packages, it queues them; preservica-api.md §4.1 and its rate-limit table).
- pyPreservica, written by Preservica, tunes its multipart parts for packages of 1, 8, 24 and 48 GiB
  (preservica-api.md §4.1): packages of a few tens of GiB are routine, beyond that every retry of a failed
  package repeats a long upload. ``DEFAULT_MAX_PACKAGE_BYTES`` is 20 GiB, under the 24 GiB step.
- The National Archives batches 10,000 records at a time (issue 20), and the Process Monitor of one package
  is read 1,000 messages a page: ``DEFAULT_MAX_PACKAGE_ASSETS`` is 10,000.

What a split never changes: every file keeps the SourceID of the whole delivery (the namespace and its
relative path, ``packaging.source_ids``), every package carries the same folders with the same SourceIDs
(Preservica's incremental OPEX ingest matches folders by SourceID, preservica-api.md §4.4), and a file is
never cut in two: a file larger than ``max_bytes`` travels alone. Files go into packages in path order, so a
folder's files stay together unless the folder alone is over a limit.

Preservica documents nothing about two packages that create the same new folder at the same time, so a
package that needs a folder another package creates (``PackagePlan.after``) is sent only once that package
has finished: with a source folder layout the first package goes alone, the others follow together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from airflow_provider_preservica.ingest.packaging.source import SourceEntry, SourceTree, SubsetTree, folders_above

GiB = 1024**3
DEFAULT_MAX_PACKAGE_BYTES = 20 * GiB
DEFAULT_MAX_PACKAGE_ASSETS = 10_000


@dataclass(frozen=True)
class PackagePlan:
    """The files of one package (relative paths, in path order) and the packages it must wait for."""

    index: int  # 1-based, in the order the packages are sent
    paths: tuple[str, ...]
    bytes: int
    after: frozenset[int] = field(default_factory=frozenset)

    @property
    def first(self) -> str:
        return self.paths[0]

    @property
    def last(self) -> str:
        return self.paths[-1]


def folders_of(paths: Iterable[str], top_folder: bool) -> set[str]:
    """Every folder a package of these files holds (``""`` is the source folder itself, if packaged)."""
    folders = folders_above(paths)
    if not top_folder:
        folders.discard("")
    return folders


def plan_packages(
    files: Sequence[SourceEntry],
    *,
    max_bytes: int,
    max_assets: int,
    top_folder: bool,
    first_index: int = 1,
    created: dict[str, int] | None = None,
) -> list[PackagePlan]:
    """Cut ``files`` into packages of at most ``max_assets`` files and ``max_bytes`` bytes (a bigger file alone).

    ``created`` maps folders that earlier packages (already sent, e.g. adopted by a retry) create to their
    index; a new package holding such a folder waits for that package.
    """
    if max_bytes < 1 or max_assets < 1:
        raise ValueError("max_package_bytes and max_package_assets must be at least 1")
    groups: list[tuple[list[str], int]] = []
    current: list[str] = []
    size = 0
    for entry in sorted(files, key=lambda e: e.path):
        if current and (len(current) >= max_assets or size + entry.size > max_bytes):
            groups.append((current, size))
            current, size = [], 0
        current.append(entry.path)
        size += entry.size
    if current:
        groups.append((current, size))
    creator = dict(created or {})
    plans: list[PackagePlan] = []
    for index, (paths, total) in enumerate(groups, first_index):
        after = set()
        for folder in folders_of(paths, top_folder):
            owner = creator.setdefault(folder, index)
            if owner != index:
                after.add(owner)
        plans.append(PackagePlan(index, tuple(paths), total, frozenset(after)))
    return plans


def in_range(path: str, first: str | None, last: str | None) -> bool:
    """Whether a package recorded as ``[first, last]`` (``None``: the whole source) held ``path``."""
    return first is None or last is None or first <= path <= last


class OnlyFiles(SubsetTree):
    """A source tree reduced to some files and the folders above them (one package of a split delivery)."""

    def __init__(self, tree: SourceTree, kept: Iterable[str]) -> None:
        super().__init__(tree, frozenset(kept).__contains__)
