"""OpenLineage for the Preservica operators, through Airflow's OpenLineage provider.

Optional: with ``apache-airflow-providers-openlineage`` installed (and a transport configured), the
provider's listener calls each operator's ``get_openlineage_facets_on_complete`` and sends what it returns;
without it nothing here is imported and the method returns ``None``.

Datasets (namespace, name):

- a Preservica entity: ``preservica://<host>``, ``<ref>``, with ``<host>`` as in the Asset URIs
  (:func:`airflow_provider_preservica.assets.preservica_host`); a search of the whole repository reads
  ``@root@``;
- a local path: ``file``, the absolute path (OpenLineage's local file system naming; Airflow's own
  ``file://`` Assets convert the same way, so both name one dataset);
- ``file://<host>/<path>``: ``file://<host>``, ``/<path>``;
- an object-storage URL: ``<scheme>://<bucket>``, the key (``s3://bucket/a/b.zip`` -> ``s3://bucket``,
  ``a/b.zip``), as the OpenLineage naming spec writes S3, GCS and the others.

Outputs carry OpenLineage's ``outputStatistics`` where the operator knows them: report rows, export bytes
and files, assets an ingest created (``fileCount``) and the package size.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_preservica.assets import SCHEME, preservica_host

log = logging.getLogger(__name__)

REPOSITORY_ROOT = "@root@"  # the name of "every entity": Preservica's own word for the top of the tree
ENTITY_OUTPUT_LIMIT = 100  # entities one metadata run lists as outputs


@dataclass(frozen=True)
class LineageDataset:
    """One OpenLineage dataset, before it is turned into the OpenLineage client's classes."""

    namespace: str
    name: str
    row_count: int | None = None
    size: int | None = None
    file_count: int | None = None

    @property
    def has_statistics(self) -> bool:
        return any(value is not None for value in (self.row_count, self.size, self.file_count))


def entity_dataset(host: str, ref: str | None) -> LineageDataset:
    """A Preservica entity (``ref``; the whole repository when empty) on server ``host``."""
    return LineageDataset(f"{SCHEME}://{preservica_host(host)}", str(ref or REPOSITORY_ROOT))


def path_dataset(path_or_url: str, **statistics: Any) -> LineageDataset:
    """A local path or an ``ObjectStoragePath`` URL (``s3://``, ``gs://``, ``file://``...)."""
    text = str(path_or_url)
    if "://" not in text:
        return LineageDataset("file", os.path.abspath(os.path.expanduser(text)), **statistics)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        namespace = f"file://{parts.netloc}" if parts.netloc else "file"
        return LineageDataset(namespace, parts.path or "/", **statistics)
    return LineageDataset(f"{scheme}://{parts.netloc}", parts.path.lstrip("/") or "/", **statistics)


def operator_lineage(inputs: list[LineageDataset], outputs: list[LineageDataset]) -> Any | None:
    """An OpenLineage provider ``OperatorLineage``, or ``None`` when that provider is not installed."""
    try:
        from airflow.providers.common.compat.openlineage.facet import (
            Dataset,
            OutputDataset,
            OutputStatisticsOutputDatasetFacet,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None

    def output(item: LineageDataset) -> Any:
        if not item.has_statistics:
            return Dataset(namespace=item.namespace, name=item.name)
        statistics = OutputStatisticsOutputDatasetFacet(
            rowCount=item.row_count, size=item.size, fileCount=item.file_count
        )
        return OutputDataset(namespace=item.namespace, name=item.name, outputFacets={"outputStatistics": statistics})

    return OperatorLineage(
        inputs=[Dataset(namespace=item.namespace, name=item.name) for item in inputs],
        outputs=[output(item) for item in outputs],
    )


def lineage_host(operator: Any) -> str | None:
    """The Preservica host an operator worked on: recorded during the run, else read from its Connection."""
    host = getattr(operator, "_preservica_host", None)
    if host:
        return str(host)
    try:
        from airflow_provider_preservica.hooks.preservica import PreservicaHook

        return preservica_host(PreservicaHook(operator.preservica_conn_id).settings.base_url)
    except Exception as exc:  # lineage must never fail a task: the Preservica side is then left out
        log.debug("No Preservica host for OpenLineage: %s", exc)
        return None
