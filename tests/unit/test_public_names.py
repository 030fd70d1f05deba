"""The public names of each package: exported by its ``__init__``, the real objects, and cheap to import.

A package ``__init__`` lists its names twice, under ``TYPE_CHECKING`` (for type checkers and IDEs) and in the
map it hands to ``_exports.lazy_exports`` (for run time): the two must give the same objects, and ``__all__``
must name exactly them. Importing a package imports none of its modules until a name is used.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys

import pytest

PKG = "airflow_provider_preservica"
#: The packages whose ``__init__`` is the import path for users and the example DAGs.
LAZY_PACKAGES = [
    f"{PKG}.{name}"
    for name in (
        "hooks",
        "operators",
        "sensors",
        "triggers",
        "ingest",
        "export",
        "search",
        "changes",
        "deletion",
        "connection",
    )
]


def type_checking_imports(package: str) -> dict[str, str]:
    """name -> the module its ``if TYPE_CHECKING:`` import names."""
    tree = ast.parse(inspect.getsource(importlib.import_module(package)))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module, ast.dump(statement)
                found.update({alias.asname or alias.name: statement.module for alias in statement.names})
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_is_exported_and_is_the_real_object(package: str) -> None:
    module = importlib.import_module(package)
    declared = type_checking_imports(package)
    assert sorted(module.__all__) == sorted(declared), "__all__ and the TYPE_CHECKING imports must list the same names"
    for name, source in declared.items():
        assert getattr(module, name) is getattr(importlib.import_module(source), name), f"{package}.{name}"
        assert name in dir(module)
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018


def test_importing_a_package_imports_none_of_its_modules() -> None:
    """A DAG that imports ``operators`` for one operator does not load the other six (or their features)."""
    code = (
        "import importlib, json, sys\n"
        f"packages = {LAZY_PACKAGES!r}\n"
        "for p in packages: importlib.import_module(p)\n"
        "print(json.dumps(sorted(m for m in sys.modules if any(m.startswith(p + '.') for p in packages))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out) == []
