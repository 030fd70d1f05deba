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
needed, so the list only shrinks); every top-level module of the provider sits in one of ``LAYERS``
(Airflow-facing, features, client, connection settings, shared leaves) and imports nothing from a layer above
its own; the example DAGs import only ``PUBLIC_PATHS`` (package ``__init__``s, ``exceptions``, ``compat``, ``assets``),
never a module inside a package; the Airflow-facing modules (``operators/``, ``sensors/``, ``triggers/``)
import no ``client.*`` module (any import, TYPE_CHECKING ones included: they reach Preservica through the hook,
and take its types from the hook module, errors from ``exceptions``), with the exceptions in
``CLIENT_ALLOWLIST`` (empty; an entry needs its reason); the hook imports no feature module (``ingest``,
``metadata``, ``deletion`` ...: they receive the hook, never the reverse) except inside a method that is a thin
wrapper users call, listed in ``HOOK_LAZY_IMPORTS`` with its reason. Import cycles between the provider's
subpackages (``client`` <-> ``ingest`` ...) are reported as a warning, not a failure.

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

#: The Airflow-facing packages: they reach Preservica only through the hook (``hooks/``), never ``client.*``.
AIRFLOW_FACING = tuple(f"{PROVIDER}.{name}" for name in ("operators", "sensors", "triggers"))
#: Airflow-facing modules allowed to import a ``client.*`` module, and why. Add none without a reason and an issue.
CLIENT_ALLOWLIST: dict[str, str] = {}
HOOKS_PACKAGE = f"{PROVIDER}.hooks"
#: The feature packages: they are handed the hook (or a Protocol it satisfies); the hook imports none of them.
FEATURE_PACKAGES = tuple(
    f"{PROVIDER}.{name}"
    for name in ("ingest", "metadata", "deletion", "changes", "packaging", "export", "search", "staging")
)
#: Feature modules the hook may import inside a method (a thin wrapper kept because users call it), and why.
HOOK_LAZY_IMPORTS = {
    f"{PROVIDER}.metadata.apply": (
        "PreservicaHook.update_metadata / update_entity, which the README shows users calling; the work is in "
        "metadata.apply, imported when the method is called"
    ),
}


#: The provider's layers, top to bottom, each with its top-level modules and packages (docs/architecture.md). A
#: module imports only from its own layer or the layers below it (run-time imports; TYPE_CHECKING ones are free).
#: A new top-level module or package goes in one of them, or the layer test fails.
LAYERS: dict[str, tuple[str, ...]] = {
    "Airflow-facing": (
        "hooks",
        "operators",
        "sensors",
        "triggers",
        "links",
        "assets",
        "lineage",
        "task_errors",
        "cli",
        "get_provider_info",
    ),
    "features": ("ingest", "export", "metadata", "search", "changes", "deletion", "jobs"),
    "client": ("client",),
    "connection settings": ("connection",),
    "shared leaves": ("files", "exceptions", "compat", "_exports", "_moved", "__init__"),
}
#: Top-level modules outside the layers: deprecation shims that forward an old import path to its new home.
OUTSIDE_LAYERS = {
    "sandbox": "0.1's import path of the sandbox, forwarding to preservica_sandbox",
    "utils": "utils.totp, forwarding to client.auth.totp",
}
#: What the example DAGs (and so users) import: package ``__init__``s and three public modules.
PUBLIC_PATHS = frozenset(
    f"{PROVIDER}.{name}"
    for name in (
        "hooks",
        "operators",
        "sensors",
        "triggers",
        "ingest",
        "export",
        "metadata",
        "search",
        "changes",
        "deletion",
        "exceptions",  # every error, one hierarchy
        "compat",  # Airflow 3.1/3.3 names for DAG code that runs on both
        "assets",  # preservica_asset(...) for a DAG's schedule or outlets
    )
)
EXAMPLE_DAGS = REPO / "example_dags"


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


def layer_of(package: Package, module: str) -> str | None:
    """The name of ``module``'s layer in ``LAYERS``, ``None`` outside them (or unknown)."""
    top = subpackage_of(package, module)
    return next((layer for layer, members in LAYERS.items() if top in members), None)


def test_every_top_level_module_has_a_layer() -> None:
    package = provider()
    unplaced = sorted(
        {subpackage_of(package, m) for m in package.modules}
        - {name for members in LAYERS.values() for name in members}
        - set(OUTSIDE_LAYERS)
    )
    assert not unplaced, f"put each in a layer of LAYERS (docs/architecture.md, 'Where a new thing goes'): {unplaced}"


def layer_offenders(package: Package) -> list[str]:
    """``file:line: A (layer) imports B (higher layer)`` for each run-time import that goes up."""
    order, offenders = list(LAYERS), []
    for module, targets in sorted(package.edges().items()):
        here = layer_of(package, module)
        if here is None:
            continue
        for target, line in sorted(targets.items()):
            there = layer_of(package, target)
            if there is not None and order.index(there) < order.index(here):
                offenders.append(
                    f"{_shown(package.modules[module].path)}:{line}: {module} ({here}) imports {target} ({there})"
                )
    return offenders


def test_no_module_imports_a_layer_above_its_own() -> None:
    """Airflow-facing -> features -> client -> connection settings -> shared leaves, never upwards."""
    offenders = layer_offenders(provider())
    assert not offenders, "a module imports only from its own layer or the layers below it:\n  " + "\n  ".join(
        offenders
    )


def test_the_layer_rule_sees_upward_imports(tmp_path: Path) -> None:
    """The checker itself: a client module importing a feature fails; a TYPE_CHECKING import does not."""
    root = tmp_path / "toy"
    (root / "client").mkdir(parents=True)
    (root / "ingest").mkdir()
    for init in (root / "__init__.py", root / "client" / "__init__.py", root / "ingest" / "__init__.py"):
        init.write_text("")
    (root / "ingest" / "runner.py").write_text("from toy.client import rest\n")
    (root / "client" / "rest.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy.ingest import runner\n"
    )
    (root / "client" / "bad.py").write_text("def f():\n    from toy.ingest.runner import x\n")
    (found,) = layer_offenders(_read_package("toy", root))
    assert found.endswith("bad.py:2: toy.client.bad (client) imports toy.ingest.runner (features)")


def public_path_offenders(dags: Path, package: Package) -> list[str]:
    """``file:line imports X`` for each import of the provider in ``dags`` that is not a public path."""
    offenders = []
    for path in sorted(dags.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for imp in _imports(tree, path.stem, False):
            if not _within(imp.target, package.name):
                continue
            modules_by_name = [f"{imp.target}.{n}" for n in imp.names if f"{imp.target}.{n}" in package.modules]
            if imp.target not in PUBLIC_PATHS or modules_by_name:
                what = ", ".join(modules_by_name) or imp.target
                offenders.append(f"{_shown(path)}:{imp.line} imports {what}")
    return offenders


def test_example_dags_import_only_public_paths() -> None:
    """Example DAGs are what users copy: they import from package ``__init__``s, never from a module inside."""
    offenders = public_path_offenders(EXAMPLE_DAGS, provider())
    assert not offenders, (
        f"example DAGs import only {', '.join(sorted(p[len(PROVIDER) + 1 :] for p in PUBLIC_PATHS))} "
        "(export the name from the package __init__):\n  " + "\n  ".join(offenders)
    )


def test_the_public_path_rule_sees_modules_imported_by_name(tmp_path: Path) -> None:
    """The checker itself: ``from pkg.operators import ingest`` (a module) is caught, like ``pkg.operators.ingest``."""
    (tmp_path / "dag.py").write_text(
        f"from {PROVIDER}.operators import PreservicaIngestOperator\n"
        f"from {PROVIDER}.operators import ingest\n"
        f"def task():\n    from {PROVIDER}.ingest.staging import stage_delivery\n"
    )
    assert public_path_offenders(tmp_path, provider()) == [
        f"{tmp_path / 'dag.py'}:2 imports {PROVIDER}.operators.ingest",
        f"{tmp_path / 'dag.py'}:4 imports {PROVIDER}.ingest.staging",
    ]


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


def client_importers(package: Package, facing: Iterable[str], client: str) -> dict[str, list[str]]:
    """Airflow-facing module -> ``file:line imports target`` for each import (TYPE_CHECKING too) of ``client``."""
    found: dict[str, list[str]] = {}
    for module in package.modules.values():
        if not any(_within(module.name, f) for f in facing):
            continue
        for imp in module.imports:
            targets = [imp.target, *(f"{imp.target}.{n}" for n in imp.names)]
            if any(_within(t, client) for t in targets):
                found.setdefault(module.name, []).append(f"{_shown(module.path)}:{imp.line} imports {imp.target}")
    return found


def test_operators_sensors_and_triggers_import_no_client_module() -> None:
    """The hook is the only way in: the Airflow-facing layer calls its methods and takes the client's types
    from ``hooks.preservica`` (errors from ``exceptions``), so a change in ``client/`` stops at the hook."""
    found = client_importers(provider(), AIRFLOW_FACING, HTTP_PACKAGE)
    offenders = [line for module, lines in sorted(found.items()) if module not in CLIENT_ALLOWLIST for line in lines]
    assert not offenders, (
        f"modules under {', '.join(f.rsplit('.', 1)[1] + '/' for f in AIRFLOW_FACING)} import no {HTTP_PACKAGE}.* "
        "module: call a PreservicaHook method (add one if it is missing), import the types from "
        f"{HOOKS_PACKAGE}.preservica and the errors from {PROVIDER}.exceptions:\n  " + "\n  ".join(offenders)
    )
    stale = sorted(set(CLIENT_ALLOWLIST) - set(found))
    assert not stale, f"CLIENT_ALLOWLIST names modules that no longer import the client; remove them: {stale}"


def _imports_in_functions(path: Path) -> set[int]:
    """Lines of the imports that sit inside a function or method (they run only when it is called)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines.update(n.lineno for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return lines


def test_the_hook_imports_no_feature_module() -> None:
    """Runners receive the hook; the hook imports no runner (the dependency points down). A method users call
    may import its feature when called, if ``HOOK_LAZY_IMPORTS`` lists it with its reason."""
    package = provider()
    graph = package.edges()
    offenders, used = [], set()
    for name, module in package.modules.items():
        if not _within(name, HOOKS_PACKAGE):
            continue
        lazy = _imports_in_functions(module.path)
        for target, line in graph[name].items():
            if not any(_within(target, feature) for feature in FEATURE_PACKAGES):
                continue
            if target in HOOK_LAZY_IMPORTS and line in lazy:
                used.add(target)
                continue
            where = "at import time" if line not in lazy else "(not in HOOK_LAZY_IMPORTS)"
            offenders.append(f"{_shown(module.path)}:{line} imports {target} {where}")
    assert not offenders, (
        "the hook imports no feature module: pass the hook (or a Protocol it satisfies) to the feature instead:\n  "
        + "\n  ".join(offenders)
    )
    stale = sorted(set(HOOK_LAZY_IMPORTS) - used)
    assert not stale, f"HOOK_LAZY_IMPORTS names modules the hook no longer imports; remove them: {stale}"


def test_the_client_rule_sees_type_checking_imports_and_names(tmp_path: Path) -> None:
    """The checker itself: ``from toy import client`` and a TYPE_CHECKING import both count; another
    package's module does not."""
    root = tmp_path / "toy"
    (root / "operators").mkdir(parents=True)
    (root / "client").mkdir()
    for init in (root, root / "operators", root / "client"):
        (init / "__init__.py").write_text("")
    (root / "client" / "rest.py").write_text("")
    (root / "hooks.py").write_text("from toy.client.rest import x\n")
    (root / "operators" / "a.py").write_text("from toy import client\n")
    (root / "operators" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy.client.rest import Client\n"
    )
    (root / "operators" / "c.py").write_text("from toy.hooks import x\nimport toy.clientele\n")
    found = client_importers(_read_package("toy", root), ["toy.operators"], "toy.client")
    assert sorted(found) == ["toy.operators.a", "toy.operators.b"]


def test_provider_subpackage_cycles_are_reported() -> None:
    """Not a failure: cycles between the provider's subpackages are shown as a warning."""
    package = provider()
    graph = subpackage_edges(package)
    cycles = strongly_connected(graph)
    for component in cycles:
        path = a_cycle(graph, component)
        steps = ", ".join(f"{a} -> {b} ({' imports '.join(graph[a][b])})" for a, b in itertools.pairwise(path))
        warnings.warn(f"{package.name}: subpackage import cycle {' -> '.join(path)}: {steps}", stacklevel=1)


#: Test-side imports of ``tests.*`` outside the support package, each with its reason.
TEST_IMPORT_ALLOWLIST = {
    "tests.distributed.dags.preservica_distributed": "the distributed tier's DAG file, whose constants (DAG and "
    "task ids) its tests name; a DAG file, not a test",
}


def _test_side_imports(root: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name


def test_tests_and_benchmarks_share_code_only_through_tests_support() -> None:
    """No test imports another test file or a conftest, and benchmarks import tests only through
    ``tests.support`` (issue 21): shared fakes and fixtures live in one package."""
    offending, used = [], set()
    for folder in (REPO / "tests", REPO / "benchmarks"):
        for path, module in _test_side_imports(folder):
            if not (module == "tests" or module.startswith("tests.")):
                continue
            if module == "tests.support" or module.startswith("tests.support."):
                continue
            if module in TEST_IMPORT_ALLOWLIST:
                used.add(module)
                continue
            offending.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offending, "import shared test code from tests.support:\n" + "\n".join(offending)
    unneeded = set(TEST_IMPORT_ALLOWLIST) - used
    assert not unneeded, f"allowlist entries no longer needed: {unneeded}"


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
    for layer, members in LAYERS.items():
        print(f"{PROVIDER} {layer}: {', '.join(members)}")


if __name__ == "__main__":
    main()
