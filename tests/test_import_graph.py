"""The import graphs of the provider and of the sandbox: no cycles, no crossing, no module over 500 lines.

Both graphs are built statically from the source with ``ast`` (nothing is imported, so the test is
fast and needs no network or Airflow database):

- a node is a module: ``pkg/x.py`` is ``pkg.x``, ``pkg/__init__.py`` is ``pkg``;
- an edge A -> B for every import A runs: ``import B``, ``from B import name`` (B.name when that is a
  module, else B), ``from . import x`` and ``from .x import y`` (resolved against A's package), and
  absolute imports of the package — at module level *and* inside functions and methods (they run too,
  only later, and a cycle hidden in a function is still a cycle);
- imports under ``if TYPE_CHECKING:`` are **not** edges: they never run (annotations only); the
  ``else:`` branch of such an ``if`` is;
- importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``; those implicit edges to the
  enclosing packages are left out, as import-linter and pydeps do.

The two packages are the provider (``airflow_provider_preservica``) and the sandbox
(``preservica_sandbox``, its own distribution under ``sandbox/``), found with ``importlib`` or, failing
that, at ``sandbox/src/preservica_sandbox`` in the checkout.

Checked: no module-level import cycle in either graph (the failure names each cycle as a path, with
the file and line of every import on it); the provider never imports the sandbox and the sandbox never
imports the provider (any import, TYPE_CHECKING ones included: they must resolve when the other
distribution is absent) - except ``airflow_provider_preservica/sandbox.py``, the deprecation shim that
keeps 0.1's import path working and is imported only by code that asks for that path; the sandbox's
API routers (``*_api`` modules) never import one another; no
module of either package has more than 500 lines; only ``client/`` imports an HTTP library (requests, urllib3,
boto3/botocore, httpx, aiohttp) - at run time, so a ``TYPE_CHECKING`` import for an annotation is allowed -
with the exceptions in ``HTTP_ALLOWLIST``, each with its reason (the test also fails when an entry is no longer
needed, so the list only shrinks). Import cycles between the provider's subpackages (``auth`` <-> ``client``
...) are reported as a warning, not a failure.

``python tests/test_import_graph.py`` prints both graphs (each module's layer: 0 imports nothing of
its package, n imports modules of layers below n) and the provider's subpackage cycles.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

PROVIDER = "airflow_provider_preservica"
SANDBOX_NAMES = ("preservica_sandbox",)
DEPRECATION_SHIMS = frozenset({f"{PROVIDER}.sandbox"})  # the old import path, forwarding to preservica_sandbox
REPO = Path(__file__).resolve().parents[1]
SANDBOX_CHECKOUT = REPO / "sandbox" / "src" / "preservica_sandbox"
MAX_LINES = 500
ROUTER_SUFFIX = "_api"
#: The libraries that speak HTTP (boto3 through botocore): only the provider's ``client`` package imports them.
HTTP_LIBRARIES = ("requests", "urllib3", "boto3", "botocore", "s3transfer", "httpx", "aiohttp")
HTTP_PACKAGE = f"{PROVIDER}.client"
#: Modules outside ``client/`` allowed to import an HTTP library, and why. Add none without a reason and an issue.
HTTP_ALLOWLIST: dict[str, str] = {}


# --------------------------------------------------------------------------- reading the source
@dataclass(frozen=True)
class Import:
    target: str  # absolute dotted name as written (a module, or a module plus an imported name)
    names: tuple[str, ...]  # the names of ``from target import a, b``; empty for ``import target``
    line: int
    type_checking: bool


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    lines: int
    imports: list[Import]


@dataclass
class Package:
    name: str
    root: Path
    modules: dict[str, Module] = field(default_factory=dict)

    def resolve(self, imp: Import) -> Iterator[str]:
        """The modules of this package that ``imp`` runs (see the module docstring)."""
        if not imp.names:
            if imp.target in self.modules:
                yield imp.target
            return
        for name in imp.names:
            if f"{imp.target}.{name}" in self.modules:
                yield f"{imp.target}.{name}"
            elif imp.target in self.modules:
                yield imp.target

    def edges(self) -> dict[str, dict[str, int]]:
        """module -> {imported module: line of the first import}, TYPE_CHECKING imports left out."""
        graph: dict[str, dict[str, int]] = {}
        for module in self.modules.values():
            out = graph.setdefault(module.name, {})
            for imp in module.imports:
                if imp.type_checking:
                    continue
                for target in self.resolve(imp):
                    if target != module.name:
                        out.setdefault(target, imp.line)
        return graph


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, module: str, is_package: bool) -> list[Import]:
    base = module.split(".") if is_package else module.split(".")[:-1]
    found: list[Import] = []

    def visit(node: ast.AST, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    visit_statement(statement, True)
                for statement in child.orelse:
                    visit_statement(statement, type_checking)
            else:
                visit_statement(child, type_checking)

    def visit_statement(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(alias.name, (), node.lineno, type_checking))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append(Import(target, tuple(a.name for a in node.names), node.lineno, type_checking))
        visit(node, type_checking)

    visit(tree, False)
    return found


def _read_package(name: str, root: Path, exclude: Path | None = None) -> Package:
    package = Package(name, root)
    for path in sorted(root.rglob("*.py")):
        if exclude is not None and path.is_relative_to(exclude):
            continue
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        dotted = ".".join([name, *parts])
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        package.modules[dotted] = Module(
            dotted, path, is_package, len(text.splitlines()), _imports(tree, dotted, is_package)
        )
    return package


def _spec_root(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


@cache
def sandbox() -> Package:
    for name in SANDBOX_NAMES:
        root = _spec_root(name)
        if root is not None:
            return _read_package(name, root)
    if (SANDBOX_CHECKOUT / "__init__.py").exists():
        return _read_package("preservica_sandbox", SANDBOX_CHECKOUT)
    pytest.fail(f"sandbox package not found (tried {', '.join(SANDBOX_NAMES)} and {SANDBOX_CHECKOUT})")


@cache
def provider() -> Package:
    root = _spec_root(PROVIDER)
    assert root is not None, f"{PROVIDER} is not importable"
    sandbox_root = sandbox().root
    return _read_package(PROVIDER, root, exclude=sandbox_root if sandbox_root.is_relative_to(root) else None)


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# --------------------------------------------------------------------------- cycles
def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's components with more than one node (or a self-loop), each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


def a_cycle(graph: Mapping[str, Iterable[str]], component: list[str]) -> list[str]:
    """One shortest cycle through the first node of ``component``, as a path that returns to it."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if nxt in members and nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start, start]


def describe_cycles(package: Package) -> list[str]:
    graph = package.edges()
    out = []
    for component in strongly_connected(graph):
        path = a_cycle(graph, component)
        steps = [f"    {a} -> {b}  ({package.modules[a].path.name}:{graph[a][b]})" for a, b in itertools.pairwise(path)]
        out.append(f"  cycle of {len(component)} modules: {', '.join(component)}\n  e.g.\n" + "\n".join(steps))
    return out


def subpackage_of(package: Package, module: str) -> str:
    """``pkg.auth.login`` -> ``auth``; a top-level module is its own subpackage; the root is ``__init__``."""
    rest = module[len(package.name) + 1 :]
    return rest.split(".", 1)[0] if rest else "__init__"


def subpackage_edges(package: Package) -> dict[str, dict[str, tuple[str, str]]]:
    """subpackage -> {imported subpackage: (an importing module, the imported module)}."""
    graph: dict[str, dict[str, tuple[str, str]]] = {}
    for module, targets in package.edges().items():
        here = subpackage_of(package, module)
        out = graph.setdefault(here, {})
        for target in targets:
            there = subpackage_of(package, target)
            if there != here:
                out.setdefault(there, (module, target))
    return graph


def layers(package: Package) -> dict[str, int]:
    """Each module's layer in an acyclic graph: 0 = imports nothing of the package, else 1 + the highest below."""
    graph = package.edges()
    depth: dict[str, int] = {}

    def layer(node: str) -> int:
        if node not in depth:
            depth[node] = 0  # guards against cycles; the cycle test reports those
            depth[node] = 1 + max((layer(n) for n in graph[node]), default=-1)
        return depth[node]

    for node in graph:
        layer(node)
    return depth


# --------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("which", ["provider", "sandbox"])
def test_no_module_level_import_cycles(which: str) -> None:
    package = provider() if which == "provider" else sandbox()
    assert package.modules, f"no modules found under {package.root}"
    cycles = describe_cycles(package)
    assert not cycles, f"import cycles in {package.name} ({package.root}):\n" + "\n".join(cycles)


def test_the_provider_never_imports_the_sandbox() -> None:
    names = (*SANDBOX_NAMES, sandbox().name)
    offenders = [
        f"{_shown(module.path)}:{imp.line} imports {imp.target}"
        for module in provider().modules.values()
        if module.name not in DEPRECATION_SHIMS
        for imp in module.imports
        if any(
            _within(imp.target, name) or any(_within(f"{imp.target}.{n}", name) for n in imp.names) for name in names
        )
    ]
    assert not offenders, "the provider must not import the sandbox (it is another distribution):\n" + "\n".join(
        offenders
    )


def test_the_sandbox_never_imports_the_provider() -> None:
    box = sandbox()
    offenders = [
        f"{module.path.name}:{imp.line} imports {imp.target}"
        for module in box.modules.values()
        for imp in module.imports
        if _within(imp.target, PROVIDER) and not _within(imp.target, box.name)
    ]
    assert not offenders, "the sandbox must stand alone (it becomes its own distribution):\n" + "\n".join(offenders)


def test_sandbox_routers_never_import_one_another() -> None:
    box = sandbox()
    routers = {name for name in box.modules if name.rsplit(".", 1)[-1].endswith(ROUTER_SUFFIX)}
    assert routers, f"no *{ROUTER_SUFFIX} modules in {box.name}"
    offenders = [
        f"{module} imports {target} ({box.modules[module].path.name}:{line})"
        for module, targets in box.edges().items()
        if module in routers
        for target, line in targets.items()
        if target in routers
    ]
    assert not offenders, "API routers share helpers (route_helpers, security), not each other:\n" + "\n".join(
        offenders
    )


def test_no_module_passes_500_lines() -> None:
    offenders = sorted(
        (module.lines, _shown(module.path))
        for package in (provider(), sandbox())
        for module in package.modules.values()
        if module.lines > MAX_LINES
    )
    assert not offenders, f"modules over {MAX_LINES} lines (split them):\n" + "\n".join(
        f"  {path}: {lines} lines" for lines, path in reversed(offenders)
    )


def http_importers(package: Package, allowed: str, libraries: Iterable[str] = HTTP_LIBRARIES) -> dict[str, list[str]]:
    """module outside ``allowed`` -> ``file:line imports lib`` for each run-time import of an HTTP library."""
    found: dict[str, list[str]] = {}
    for module in package.modules.values():
        if _within(module.name, allowed):
            continue
        for imp in module.imports:
            if not imp.type_checking and any(_within(imp.target, lib) for lib in libraries):
                found.setdefault(module.name, []).append(f"{_shown(module.path)}:{imp.line} imports {imp.target}")
    return found


def test_only_the_client_imports_http_libraries() -> None:
    """Only ``client/`` speaks HTTP: a feature, operator or auth module asks the client (or the hook) instead."""
    found = http_importers(provider(), HTTP_PACKAGE)
    offenders = [line for module, lines in sorted(found.items()) if module not in HTTP_ALLOWLIST for line in lines]
    assert not offenders, (
        f"only {HTTP_PACKAGE} may import {', '.join(HTTP_LIBRARIES)} (at run time; a TYPE_CHECKING import for an "
        "annotation is fine). Call the client or the hook instead, or move the code into client/:\n  "
        + "\n  ".join(offenders)
    )
    stale = sorted(set(HTTP_ALLOWLIST) - set(found))
    assert not stale, f"HTTP_ALLOWLIST names modules that no longer import an HTTP library; remove them: {stale}"


def test_the_http_rule_sees_imports_in_functions_but_not_under_type_checking(tmp_path: Path) -> None:
    """The checker itself: an import inside a function counts, one under TYPE_CHECKING does not."""
    root = tmp_path / "toy"
    (root / "client").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "client" / "__init__.py").write_text("import requests\n")
    (root / "late.py").write_text("def upload():\n    from botocore.config import Config\n")
    (root / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import requests\n")
    (root / "urllib3x.py").write_text("import urllib3x\n")  # a name that only starts like one
    found = http_importers(_read_package("toy", root), "toy.client")
    assert found == {"toy.late": [f"{_shown(root / 'late.py')}:2 imports botocore.config"]}


def test_the_graph_sees_cycles_in_functions_but_not_under_type_checking(tmp_path: Path) -> None:
    """The checker itself: a cycle closed by an import inside a function is found, a TYPE_CHECKING one is not."""
    root = tmp_path / "toy"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from . import b\n")
    (root / "a.py").write_text("from .sub.b import thing\n")
    (root / "sub" / "b.py").write_text("def thing():\n    from .. import a\n")
    (root / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\nimport toy.a\n"
    )
    (root / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import e\n")
    (root / "e.py").write_text("from . import d\n")
    toy = _read_package("toy", root)
    assert toy.edges()["toy.c"] == {"toy.a": 4}
    assert strongly_connected(toy.edges()) == [["toy.a", "toy.sub.b"]]
    (message,) = describe_cycles(toy)
    assert "toy.a -> toy.sub.b  (a.py:1)" in message and "toy.sub.b -> toy.a  (b.py:2)" in message


def test_provider_subpackage_cycles_are_reported() -> None:
    """Not a failure: cycles between the provider's subpackages are shown as a warning."""
    package = provider()
    graph = subpackage_edges(package)
    cycles = strongly_connected(graph)
    for component in cycles:
        path = a_cycle(graph, component)
        steps = ", ".join(f"{a} -> {b} ({' imports '.join(graph[a][b])})" for a, b in itertools.pairwise(path))
        warnings.warn(f"{package.name}: subpackage import cycle {' -> '.join(path)}: {steps}", stacklevel=1)


def main() -> None:
    for package in (provider(), sandbox()):
        print(f"{package.name} ({package.root}): {len(package.modules)} modules")
        graph, depth = package.edges(), layers(package)
        for module in sorted(graph, key=lambda m: (depth[m], m)):
            imported = ", ".join(sorted(t[len(package.name) + 1 :] or "__init__" for t in graph[module]))
            short = module[len(package.name) + 1 :] or "__init__"
            print(f"  layer {depth[module]:2d}  {short:<28} {package.modules[module].lines:4d} lines  -> {imported}")
        print("  module cycles:", describe_cycles(package) or "none")
    cycles = strongly_connected(subpackage_edges(provider()))
    print(f"{PROVIDER} subpackage cycles:", cycles or "none")


if __name__ == "__main__":
    main()
