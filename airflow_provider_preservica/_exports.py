"""Public names of a package, imported when first used (PEP 562), so that importing the package stays cheap.

A package ``__init__`` lists where each public name lives and hands the map to ``lazy_exports``::

    __getattr__, __dir__ = lazy_exports(__name__, {"PreservicaHook": ".preservica", "Entity": "..client.entities"})

``from airflow_provider_preservica.hooks import PreservicaHook`` then imports ``hooks.preservica`` at that
moment, not before, and the name is kept on the package afterwards. Nothing runs at package import, so a
package ``__init__`` never drags its siblings in (no import cycles through it) and a DAG file pays only for
what it uses. The ``__init__`` also repeats the imports under ``TYPE_CHECKING`` so that type checkers and
IDEs see the real objects; ``tests/unit/test_public_names.py`` checks that the two lists agree.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``where`` maps each public name to the module that defines it,
    relative to ``package`` as in a relative import (``.verify`` is a submodule, ``..files.unpack`` a sibling's).
    """

    def __getattr__(name: str) -> Any:
        submodule = where.get(name)
        if submodule is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(submodule, package), name)
        setattr(sys.modules[package], name, value)  # found once; later lookups never reach here
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
