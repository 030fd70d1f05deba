"""How a delivery is cut into packages: limits by files and bytes, a file never cut, the order packages go in."""

from __future__ import annotations

from airflow_provider_preservica.ingest.packaging.source import SourceEntry
from airflow_provider_preservica.ingest.split import in_range, plan_packages


def _files(*sizes_by_path: tuple[str, int]) -> list[SourceEntry]:
    return [SourceEntry(path, "file", size) for path, size in sizes_by_path]


def test_packages_hold_at_most_the_limit_of_files_in_path_order():
    files = _files(*((f"box-{i // 4}/item-{i:02d}.txt", 10) for i in reversed(range(10))))

    plans = plan_packages(files, max_bytes=10**9, max_assets=4, top_folder=True)

    assert [len(p.paths) for p in plans] == [4, 4, 2]
    assert [p.first for p in plans] == ["box-0/item-00.txt", "box-1/item-04.txt", "box-2/item-08.txt"]
    assert sorted(path for p in plans for path in p.paths) == sorted(f.path for f in files)  # each file once


def test_a_file_over_the_byte_limit_travels_alone_and_is_never_cut():
    files = _files(("a.txt", 40), ("b.iso", 500), ("c.txt", 40), ("d.txt", 40))

    plans = plan_packages(files, max_bytes=100, max_assets=100, top_folder=False)

    assert [p.paths for p in plans] == [("a.txt",), ("b.iso",), ("c.txt", "d.txt")]
    assert [p.bytes for p in plans] == [40, 500, 80]


def test_a_package_waits_for_the_package_that_creates_its_folders():
    files = _files(("x/1.txt", 1), ("x/2.txt", 1), ("x/3.txt", 1), ("y/4.txt", 1), ("z/5.txt", 1), ("z/6.txt", 1))

    with_top = plan_packages(files, max_bytes=10**9, max_assets=2, top_folder=True)
    contents = plan_packages(files, max_bytes=10**9, max_assets=2, top_folder=False)

    # With the source's own folder in every package, every package needs the first one.
    assert [sorted(p.after) for p in with_top] == [[], [1], [1]]
    # Straight into the parent: only a folder split across packages (x) makes one wait.
    assert [sorted(p.after) for p in contents] == [[], [1], []]


def test_packages_planned_after_adopted_ones_are_numbered_after_them_and_wait_for_their_folders():
    files = _files(("x/3.txt", 1), ("y/4.txt", 1))

    plans = plan_packages(files, max_bytes=10**9, max_assets=1, top_folder=False, first_index=2, created={"x": 1})

    assert [(p.index, sorted(p.after)) for p in plans] == [(2, [1]), (3, [])]


def test_a_recorded_range_holds_the_paths_between_its_first_and_last_file():
    assert in_range("box-1/b.txt", "box-1/a.txt", "box-1/c.txt")
    assert not in_range("box-2/a.txt", "box-1/a.txt", "box-1/c.txt")
    assert in_range("anything", None, None)  # a record of one package covers the whole source
