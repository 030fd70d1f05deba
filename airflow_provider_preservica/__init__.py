"""Apache Airflow provider for Preservica.

``PreservicaHook`` reads a ``preservica`` Connection (or a legacy ``config.ini``), shares one access
token per account between every task through an Airflow Variable, and hands out a REST client that
retries transient faults and recovers from expired tokens exactly once.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.2.0"  # the one place the version is written (pyproject.toml reads it; see CHANGELOG.md)
