"""Every module that moved into a feature folder (issue 21) still imports from its old path, with a warning.

The old path gives the new module itself (the same object, so classes, functions and state are shared); an
old package that was split (``packaging``, ``auth``) is a stand-in whose names and submodules are the new ones.
The map in ``_moved.MOVED`` is the table in ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import airflow_provider_preservica
from airflow_provider_preservica._moved import MOVED, SPLIT_PACKAGES

PKG = airflow_provider_preservica.__name__
ROOT = Path(airflow_provider_preservica.__file__).parent
DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
MAP_HEADING = "## The move to feature folders"
MODULES = sorted(old for old in MOVED if old not in SPLIT_PACKAGES)


@pytest.fixture
def fresh() -> Iterator[None]:
    """Forget the old names, so that the next import of one is a first import (the one that warns)."""
    saved = {name: module for name, module in sys.modules.items() if name in MOVED}
    for name in saved:
        del sys.modules[name]
    yield
    for name in MOVED:
        sys.modules.pop(name, None)
    sys.modules.update(saved)


@pytest.mark.parametrize("old", MODULES)
def test_an_old_module_path_gives_the_new_module_and_warns(old: str, fresh: None) -> None:
    new = MOVED[old]
    with pytest.warns(DeprecationWarning, match=rf"^{re.escape(old)} is deprecated: import {re.escape(new)} ") as seen:
        moved = importlib.import_module(old)
    assert moved is importlib.import_module(new)
    assert [w.filename for w in seen if issubclass(w.category, DeprecationWarning)] == [__file__] * len(seen), (
        "the warning names the line that imported the old path"
    )


@pytest.mark.parametrize("old", sorted(SPLIT_PACKAGES))
def test_an_old_split_package_gives_the_new_names_and_submodules(old: str, fresh: None) -> None:
    new = importlib.import_module(MOVED[old])
    with pytest.warns(DeprecationWarning, match=rf"^{re.escape(old)} is deprecated"):
        stand_in = importlib.import_module(old)
    for name in getattr(new, "__all__", ()):
        assert getattr(stand_in, name) is getattr(new, name), name
    submodules = [moved for moved in MOVED if moved.rpartition(".")[0] == old]
    assert submodules
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for submodule in submodules:
            last = submodule.rpartition(".")[2]
            assert getattr(stand_in, last) is importlib.import_module(MOVED[submodule]), submodule
            assert last in dir(stand_in)
    with pytest.raises(AttributeError):
        stand_in.no_such_name  # noqa: B018


def test_from_imports_of_old_paths_work() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from airflow_provider_preservica.auth import settings
        from airflow_provider_preservica.packaging import build_opex_package, verify
        from airflow_provider_preservica.packaging.builder import build_opex_package as built
        from airflow_provider_preservica.staging import stage_delivery

    from airflow_provider_preservica.connection import settings as new_settings
    from airflow_provider_preservica.export import verify as new_verify
    from airflow_provider_preservica.ingest import stage_delivery as new_stage_delivery
    from airflow_provider_preservica.ingest.packaging import build_opex_package as new_build

    assert settings is new_settings and verify is new_verify
    assert build_opex_package is built is new_build and stage_delivery is new_stage_delivery


def test_a_star_import_of_an_old_split_package_gives_the_names_it_gave() -> None:
    """0.1's ``packaging/__init__`` had an ``__all__``: ``from ...packaging import *`` still brings those names."""
    new = importlib.import_module(f"{PKG}.ingest.packaging")
    names: dict[str, object] = {"__name__": "a_dag"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        exec(f"from {PKG}.packaging import *", names)
    assert new.__all__
    assert {name: names.get(name) for name in new.__all__} == {name: getattr(new, name) for name in new.__all__}


def test_no_old_path_is_also_a_file_and_every_new_path_is_one() -> None:
    """A file left at an old path would be shadowed by the finder; a new path without a file is a typo."""

    def file_of(name: str) -> Path:
        return ROOT.joinpath(*name.split(".")[1:])

    left = [old for old in MOVED if file_of(old).with_suffix(".py").exists() or (file_of(old) / "__init__.py").exists()]
    assert not left, f"files still at old paths: {left}"
    missing = [
        new
        for new in MOVED.values()
        if not (file_of(new).with_suffix(".py").exists() or (file_of(new) / "__init__.py").exists())
    ]
    assert not missing, f"MOVED points at modules that do not exist: {missing}"


def test_the_map_is_the_one_in_the_architecture_page() -> None:
    section = DOC.read_text(encoding="utf-8").split(MAP_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w.]+)`[^|]*\| `([\w.]+)`", section, re.MULTILINE)
    assert {f"{PKG}.{old}": f"{PKG}.{new}" for old, new in rows} == MOVED


def test_a_dag_file_importing_an_old_path_shows_the_warning(tmp_path: Path) -> None:
    """Python shows a DeprecationWarning only in ``__main__`` (Airflow adds its own modules): a DAG file is
    imported under another name, so the package adds a filter for the old paths' warnings, unless the user
    chose filters (``-W``, ``PYTHONWARNINGS``). Pytest shows every warning, hence a process of its own."""
    dag = tmp_path / "my_dag.py"
    dag.write_text(f"from {PKG}.staging import stage_delivery\nfrom {PKG}.transport import HttpTransport\n")
    load = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location('unusual_prefix_my_dag',"
        " sys.argv[1]); spec.loader.exec_module(importlib.util.module_from_spec(spec))"
    )
    env = {name: value for name, value in os.environ.items() if name != "PYTHONWARNINGS"}

    def stderr(*options: str) -> str:
        return subprocess.run(
            [sys.executable, *options, "-c", load, str(dag)], capture_output=True, text=True, env=env, check=True
        ).stderr

    shown = stderr()
    assert f"{dag}:1: DeprecationWarning: {PKG}.staging is deprecated: import {PKG}.ingest.staging" in shown
    assert f"{dag}:2: DeprecationWarning: {PKG}.transport is deprecated: import {PKG}.client.http" in shown
    assert "deprecated" not in stderr("-W", "ignore::DeprecationWarning")
