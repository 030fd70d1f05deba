"""Read ``docker-compose.yaml`` the way Compose does: ``.env`` file, ``${VAR}`` interpolation, YAML merge keys.

Only what the deployment tests need: the interpolation forms of the Compose specification (``$$``, ``$VAR``,
``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``) and ``KEY=VALUE``
env files. A real Compose parser, when one is installed, is exercised separately.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
SCHEMA_FILE = REPO / "tests" / "deployment" / "compose-spec.json"

_REFERENCE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>.*))?$", re.DOTALL)


class InterpolationError(ValueError):
    """A required variable is missing (``${VAR:?message}``) or a reference is malformed."""


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; ``#`` comments and blank lines skipped; a later line wins; quotes stripped."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path.name}: not KEY=VALUE: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def references(text: str) -> dict[str, str | None]:
    """Every variable referenced in ``text`` -> its operator (``None``, ``:-``, ``-``, ``:?`` or ``?``).

    A variable used several ways maps to its required form if any use requires it.
    """
    found: dict[str, str | None] = {}
    for match in _REFERENCE.finditer(text):
        if match["escaped"]:
            continue
        if match["named"]:
            found.setdefault(match["named"], None)
            continue
        parsed = _BRACED.match(match["braced"])
        if not parsed:
            raise InterpolationError(f"malformed reference ${{{match['braced']}}}")
        _merge(found, parsed["name"], parsed["op"])
    return found


def _merge(found: dict[str, str | None], name: str, op: str | None) -> None:
    """Keep the strictest use of a variable: required (``?``) wins over a default or a bare reference."""
    if name not in found or (op or "").endswith("?"):
        found[name] = op


def referenced_variables(node: Any) -> dict[str, str | None]:
    """:func:`references` over every string of a parsed YAML tree (comments are not configuration)."""
    found: dict[str, str | None] = {}
    if isinstance(node, str):
        return references(node)
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        for name, op in referenced_variables(child).items():
            _merge(found, name, op)
    return found


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        parsed = _BRACED.match(match["braced"])
        if not parsed:
            raise InterpolationError(f"malformed reference ${{{match['braced']}}}")
        name, op, arg = parsed["name"], parsed["op"], parsed["arg"] or ""
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            raise InterpolationError(f"{name}: {arg}")
        return value or ""

    return _REFERENCE.sub(replace, text)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def load_raw(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The YAML with anchors and ``<<`` merge keys resolved, before interpolation."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


def load(env: Mapping[str, str], path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The Compose model as Compose sees it with this environment (values interpolated after YAML parsing)."""
    data: dict[str, Any] = _interpolate_tree(load_raw(path), env)
    return data


def generated_secrets() -> dict[str, str]:
    """What docs/deployment.md tells users to generate into ``.env``."""
    return {
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(32),
    }


def example_env() -> dict[str, str]:
    """``.env`` as a new user makes it: ``.env.example`` plus the two generated secrets."""
    env = read_env_file(ENV_EXAMPLE)
    env.update(generated_secrets())
    return env


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict (Compose allows a mapping or a ``KEY=VALUE`` list)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def command_of(service: Mapping[str, Any]) -> list[str]:
    raw = service.get("command") or []
    return raw.split() if isinstance(raw, str) else [str(part) for part in raw]


def option_value(args: list[str], option: str) -> str:
    """The value after ``option`` in an argument list."""
    assert option in args, f"{option} missing from {args}"
    return args[args.index(option) + 1]
