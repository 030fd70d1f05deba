"""Apache Airflow provider for Preservica.

``PreservicaHook`` reads a ``preservica`` Connection (or a legacy ``config.ini``), shares one access
token per account between every task through an Airflow Variable, and hands out a REST client that
retries transient faults and recovers from expired tokens exactly once.

Modules that moved into feature folders keep their old import paths, with a ``DeprecationWarning``
(``_moved``).
"""

from __future__ import annotations

from airflow_provider_preservica import _moved

__all__ = ["__version__"]

__version__ = "0.2.0"  # the one place the version is written (pyproject.toml reads it; see CHANGELOG.md)

_moved.install()
