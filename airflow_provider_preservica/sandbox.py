"""Deprecated: the Preservica sandbox is its own distribution now, ``preservica-sandbox``.

``import airflow_provider_preservica.sandbox`` (and ``...sandbox.<module>``, and
``python -m airflow_provider_preservica.sandbox``) keep working for code written against 0.1, with a
``DeprecationWarning``: every name comes from :mod:`preservica_sandbox`, the same module objects, so
classes and state are shared whichever path imported them. Install it with
``pip install preservica-sandbox`` (or the provider's ``[sandbox]`` extra) and import ``preservica_sandbox``.
The provider itself never imports the sandbox; only this shim does, when someone imports it.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import warnings
from typing import Any

warnings.warn(
    "airflow_provider_preservica.sandbox is deprecated: install preservica-sandbox and import preservica_sandbox",
    DeprecationWarning,
    stacklevel=2,
)

try:
    import preservica_sandbox as _sandbox
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "the Preservica sandbox is a separate distribution since 0.2: pip install preservica-sandbox "
        "(or 'airflow-provider-preservica[sandbox]'), then import preservica_sandbox"
    ) from exc

# Alias every submodule under the old name, so ``from airflow_provider_preservica.sandbox.server import X``
# finds the module ``preservica_sandbox.server`` itself rather than loading a second copy of it.
for _info in pkgutil.iter_modules(_sandbox.__path__):
    if _info.name == "__main__":
        continue
    _module = importlib.import_module(f"preservica_sandbox.{_info.name}")
    sys.modules[f"{__name__}.{_info.name}"] = _module
    globals()[_info.name] = _module

__all__ = list(_sandbox.__all__)
__path__: list[str] = []  # a package to the import system, so that the aliased submodules resolve


def __getattr__(name: str) -> Any:
    return getattr(_sandbox, name)


if __name__ == "__main__":  # python -m airflow_provider_preservica.sandbox
    from preservica_sandbox.server import main

    raise SystemExit(main())
