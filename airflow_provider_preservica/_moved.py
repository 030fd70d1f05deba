"""Old import paths of the modules that moved into feature folders (issue 21) keep working, with a warning.

``import airflow_provider_preservica.staging`` gives the module ``airflow_provider_preservica.ingest.staging``
itself: the same module object under both names, so its classes, functions and module state are shared (an
``except StagingError`` or a ``mock.patch`` written against the old path means what it meant before). The
first import of an old path raises a ``DeprecationWarning`` that names the new one.

An old *package* that was split (``packaging``, ``auth``) is a small stand-in module instead: its names come
from the package that took its place (``from airflow_provider_preservica.packaging import build_opex_package``
is ``ingest.packaging``'s), and its submodules from wherever each one went (``packaging.verify`` is
``export.verify``).

One meta path finder does it, installed by the package ``__init__``: it answers for the names in ``MOVED``
only, before any other finder, and costs a dict lookup on every other import. ``MOVED`` is the map in
``docs/architecture.md``; ``tests/unit/test_moved.py`` imports every old path in it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

_PKG = "airflow_provider_preservica"

#: old module -> the module that holds its code now (full dotted names).
MOVED: dict[str, str] = {
    f"{_PKG}.{old}": f"{_PKG}.{new}"
    for old, new in {
        "staging": "ingest.staging",
        "packaging": "ingest.packaging",
        "packaging.builder": "ingest.packaging.builder",
        "packaging.opex": "ingest.packaging.opex",
        "packaging.zipper": "ingest.packaging.zipper",
        "packaging.source": "ingest.packaging.source",
        "packaging.source_ids": "ingest.packaging.source_ids",
        "packaging.model": "ingest.packaging.model",
        "packaging.validation": "ingest.packaging.validation",
        "packaging.inspection": "ingest.packaging.inspection",
        "packaging.metadata": "ingest.packaging.descriptive",
        "packaging.errors": "exceptions",
        "packaging.verify": "export.verify",
        "search_report": "search.report",
        "packaging.fixity": "files.fixity",
        "packaging.nofollow": "files.nofollow",
        "packaging.archive_members": "files.archive_members",
        "packaging.bounded_xml": "files.bounded_xml",
        "packaging.unpack": "files.unpack",
        "storage": "files.storage",
        "report_csv": "files.report_csv",
        "fragments": "files.fragments",
        "auth": "client.auth",
        "auth.login": "client.auth.login",
        "auth.token": "client.auth.token",
        "auth.cache": "client.auth.cache",
        "auth.lease": "client.auth.lease",
        "auth.locks": "client.auth.locks",
        "auth.stores": "client.auth.stores",
        "auth.totp": "client.auth.totp",
        "auth.static": "client.auth.static",
        "interop": "client.pypreservica",
        "auth.settings": "connection.settings",
        "auth.ini": "connection.ini",
        "auth.sources": "connection.sources",
        "auth.endpoint": "connection.endpoint",
        "transport": "client.http",
        "client.transport": "client.http",
        "redirects": "client.redirects",
    }.items()
}

#: Old packages whose modules went to several places: a stand-in module answers for them.
SPLIT_PACKAGES = frozenset({f"{_PKG}.packaging", f"{_PKG}.auth"})


def _warn(old: str, new: str) -> None:
    """Warn at the line that imported the old path (the first frame outside importlib and this module)."""
    message = f"{old} is deprecated: import {new} instead"
    frame = sys._getframe(1)
    while frame.f_back is not None and (
        frame.f_code.co_filename == __file__ or "importlib" in frame.f_code.co_filename
    ):
        frame = frame.f_back
    where = frame.f_globals
    warnings.warn_explicit(
        message,
        DeprecationWarning,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=where.get("__name__"),
        registry=where.setdefault("__warningregistry__", {}),
    )


class _StandIn(ModuleType):
    """An old split package: names from the package that replaced it, submodules from their new places."""

    def __init__(self, name: str, new: str) -> None:
        super().__init__(name, f"Deprecated: moved to {new} (see airflow_provider_preservica._moved).")
        self.__path__: list[str] = []
        self._new = new

    def __getattr__(self, attr: str) -> Any:
        if attr == "__all__":  # ``from <old package> import *`` gives what it gave before: the new package's names
            return list(getattr(importlib.import_module(self._new), "__all__", ()))
        if attr.startswith("__"):
            raise AttributeError(attr)
        submodule = f"{self.__name__}.{attr}"
        if submodule in MOVED:
            return importlib.import_module(submodule)
        return getattr(importlib.import_module(self._new), attr)

    def __dir__(self) -> list[str]:
        prefix = self.__name__ + "."
        submodules = [old[len(prefix) :] for old in MOVED if old.startswith(prefix) and "." not in old[len(prefix) :]]
        return sorted({*dir(importlib.import_module(self._new)), *submodules})


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        if spec.name in SPLIT_PACKAGES:
            return _StandIn(spec.name, self.new)
        return None  # a throwaway module: exec_module puts the real one in its place

    def exec_module(self, module: ModuleType) -> None:
        _warn(module.__name__, self.new)
        if not isinstance(module, _StandIn):
            # The import system returns whatever sys.modules holds under the old name once this returns.
            sys.modules[module.__name__] = importlib.import_module(self.new)


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old names in ``MOVED`` (and nothing else)."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new), is_package=fullname in SPLIT_PACKAGES)


#: How every warning about an old path starts: this module's, and those of the shims that forward names one by
#: one (``transport``, ``redirects``, ``client.transport``, ``utils.totp``, ``sandbox``).
OLD_PATH_WARNING = r"airflow_provider_preservica\.[\w.]+ is deprecated"


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once), and let the old paths' warnings be seen.

    Python shows a ``DeprecationWarning`` only where ``__main__`` triggers it, and Airflow adds only its own
    modules (``module="airflow"``); a DAG file is imported under another name, so without this filter a DAG
    author would never see one, neither in the logs nor in Airflow's DAG warnings. As Airflow does for its
    own, the filter is left out when the user chose filters (``-W``, ``PYTHONWARNINGS``).
    """
    if not any(type(finder).__name__ == MovedModuleFinder.__name__ for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
    if not sys.warnoptions:
        warnings.filterwarnings("default", message=OLD_PATH_WARNING, category=DeprecationWarning)
