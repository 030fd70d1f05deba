"""Airflow Assets for Preservica entities, and the asset events the operators emit.

One Asset per Preservica entity: ``preservica://<host>/<ref>``. ``<host>`` is the server's host name in
lower case, with its port only when that is not the scheme's default (``eu.preservica.com``,
``preservica.example.org:8443``, ``127.0.0.1:8765`` for the sandbox): the same whether the Connection's
Host is ``eu.preservica.com``, ``https://eu.preservica.com`` or ``https://EU.preservica.com:443``. ``<ref>``
is the entity's reference, for a folder or an asset alike.

Outlets are fixed when the DAG file is parsed, while the operators learn their target at run time (refs
are templated). So an operator fills in what its outlets ask for:

- an ``Asset`` (or ``Asset.ref``) outlet gets this run's ``extra`` (refs created, counts, checksums...);
- an ``AssetAlias`` outlet gets the asset(s) the run produced, with the same ``extra``: the ingest's target
  folder, the export's or the search report's file, the entities a metadata sheet changed.

Events are emitted only when something happened: an ingest that created no asset, a dry run or a sheet that
changed nothing emit no event (``emit_empty_asset_events=True`` restores Airflow's "every success" rule).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import Asset, AssetAlias

log = logging.getLogger(__name__)

SCHEME = "preservica"
DEFAULT_PORTS = {"https": 443, "http": 80}
EXTRA_LIST_LIMIT = 20  # refs listed in an asset event's extra, like the XComs
ALIAS_ASSET_LIMIT = 100  # assets one run adds to an alias (a metadata sheet may change thousands of entities)


def preservica_host(conn_host_or_url: str) -> str:
    """The ``<host>`` of Preservica Asset URIs and OpenLineage namespaces, from a Connection's Host or a URL.

    >>> preservica_host("https://EU.preservica.com:443/")
    'eu.preservica.com'
    >>> preservica_host("preservica.example.org:8443")
    'preservica.example.org:8443'
    """
    raw = (conn_host_or_url or "").strip()
    if not raw:
        raise ValueError("a Preservica host is needed, e.g. 'eu.preservica.com' or 'https://eu.preservica.com'")
    if "://" not in raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    if not parts.hostname:
        raise ValueError(f"cannot read a host name from {conn_host_or_url!r}")
    host = parts.hostname.lower()
    netloc = f"[{host}]" if ":" in host else host
    port = parts.port
    if port and port != DEFAULT_PORTS.get(parts.scheme.lower()):
        netloc = f"{netloc}:{port}"
    return netloc


def preservica_uri(conn_host_or_url: str, ref: str) -> str:
    """``preservica://<host>/<ref>``; see :func:`preservica_host` for ``<host>``."""
    ref = str(ref or "").strip()
    if not ref or "/" in ref or "{{" in ref or "{%" in ref:
        raise ValueError(
            f"{ref!r} is not a Preservica reference. Outlets and schedules are fixed when the DAG is parsed, so "
            "a templated or run-time reference cannot be named here: give the operator an AssetAlias outlet "
            "instead, and it adds preservica://<host>/<ref> for the entity it worked on"
        )
    return f"{SCHEME}://{preservica_host(conn_host_or_url)}/{ref}"


def preservica_asset(conn_host_or_url: str, ref: str, **kwargs: Any) -> Asset:
    """The Airflow Asset of Preservica entity ``ref`` on the server ``conn_host_or_url``.

    Use the same call on both sides::

        COLLECTION = preservica_asset("eu.preservica.com", "8a7f1c52-0b7e-4f0e-9d2c-1e6b5a4c3d21")
        PreservicaIngestOperator(..., parent_ref=COLLECTION_REF, outlets=[COLLECTION])   # producer
        with DAG("export_collection", schedule=[COLLECTION]): ...                          # consumer

    ``Asset("preservica://eu.preservica.com/<ref>")`` is the same asset. ``kwargs`` go to ``Asset``
    (``extra``, ``group``...); the name is the URI, as for ``Asset(uri)``.
    """
    uri = preservica_uri(conn_host_or_url, ref)
    return Asset(uri=uri, name=kwargs.pop("name", uri), **kwargs)


def file_asset(path_or_url: str) -> Asset:
    """The Asset of a file an operator wrote: ``file:///abs/path`` for a local path, else the URL itself."""
    if "://" in path_or_url:
        return Asset(uri=path_or_url)
    return Asset(uri=Path(os.path.abspath(os.path.expanduser(path_or_url))).as_uri())


def capped(items: Sequence[str], limit: int = EXTRA_LIST_LIMIT) -> list[str]:
    return [str(item) for item in list(items)[:limit]]


def _concrete(outlet: Any) -> bool:
    from airflow.sdk.definitions.asset import AssetRef

    return isinstance(outlet, (Asset, AssetRef))


def emit_asset_events(
    operator: Any,
    context: Mapping[str, Any],
    *,
    produced: Iterable[Asset],
    extra: Mapping[str, Any],
    changed: bool = True,
    emit_unchanged: bool = False,
) -> bool:
    """Fill this run's asset events for ``operator``'s outlets; withhold them when nothing ``changed``.

    Returns whether events are emitted. ``produced``: the assets an ``AssetAlias`` outlet gets (at most
    ``ALIAS_ASSET_LIMIT``). Airflow emits an event for each ``Asset`` outlet of a successful task; to
    withhold them, this run's copy of the task drops its ``Asset`` outlets (the DAG keeps declaring them).
    """
    outlets = list(getattr(operator, "outlets", None) or [])
    if not outlets:
        return False
    events = context.get("outlet_events")
    if not changed and not emit_unchanged:
        kept = [o for o in outlets if not _concrete(o)]
        if len(kept) != len(outlets) or any(isinstance(o, AssetAlias) for o in outlets):
            operator.log.info("No asset event: this run created or changed nothing in Preservica")
        operator.outlets = kept
        return False
    if events is None:  # the operator was called outside a task run (tests, plain Python)
        return False
    payload = dict(extra)
    assets = list(produced)
    if len(assets) > ALIAS_ASSET_LIMIT:
        operator.log.warning(
            "This run produced %d assets; only the first %d are added to the asset alias outlets",
            len(assets),
            ALIAS_ASSET_LIMIT,
        )
        assets = assets[:ALIAS_ASSET_LIMIT]
    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            for asset in assets:
                events[outlet].add(asset, extra=payload)
        elif _concrete(outlet):
            events[outlet].extra.update(payload)
    return True
