"""Extra links: a button on the task that opens the entity in Preservica's web UI.

Airflow 3 evaluates links on the worker when the task ends and keeps the result, so the operators push
the URL to XCom as soon as they know the entity (before any waiting) and the link reads it back.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

ENTITY_URL_XCOM_KEY = "preservica_entity_url"
# Preservica Explorer opens an entity's properties at this fragment; SO_ is a folder, IO_ an asset.
EXPLORER_PATH = "/explorer/explorer.html#properties:{entity_type}_{ref}"


def explorer_url(base_url: str, ref: str, entity_type: str = "SO") -> str:
    """The Preservica Explorer URL of entity ``ref`` (``entity_type`` ``SO`` for a folder, ``IO`` an asset)."""
    return base_url.rstrip("/") + EXPLORER_PATH.format(entity_type=entity_type.upper() or "SO", ref=ref)


class PreservicaEntityLink(BaseOperatorLink):
    """Opens, in Preservica, the folder an ingest went into or the entity an export came from."""

    name = "Preservica entity"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=ENTITY_URL_XCOM_KEY)
        return str(value) if value else ""
