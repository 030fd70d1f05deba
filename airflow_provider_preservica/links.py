"""Extra links: a button on the task that opens the entity in Preservica's web UI.

Airflow 3 evaluates links on the worker when the task ends and keeps the result, so the operators push
the URL to XCom as soon as they know the entity (before any waiting), for the link and for downstream
tasks. The link itself reads the URL from the operator object (:func:`show_entity`): pulling an XCom that
does not exist, because the task failed before it knew the entity, makes Airflow log
``[error] XCom not found``. A task resumed after deferral is a new operator object, so
``execute_complete`` calls :func:`restore_entity` first.
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


class _LinkSlot:
    """Where one kind of link keeps its URL: an XCom (for downstream tasks and after deferral) and the operator."""

    def __init__(self, xcom_key: str, attribute: str) -> None:
        self.xcom_key, self.attribute = xcom_key, attribute

    def show(self, operator: Any, context: Any, url: str) -> None:
        """Push the URL to XCom and make it the task's link."""
        context["ti"].xcom_push(key=self.xcom_key, value=url)
        setattr(operator, self.attribute, url)

    def restore(self, operator: Any, context: Any) -> None:
        """In ``execute_complete``: the link the task showed before it deferred (its XCom is there)."""
        url = context["ti"].xcom_pull(task_ids=operator.task_id, key=self.xcom_key)
        setattr(operator, self.attribute, str(url) if url else "")

    def url(self, operator: Any) -> str:
        return str(getattr(operator, self.attribute, "") or "")


_ENTITY = _LinkSlot(ENTITY_URL_XCOM_KEY, "_preservica_entity_url")
show_entity = _ENTITY.show
restore_entity = _ENTITY.restore


class PreservicaEntityLink(BaseOperatorLink):
    """Opens, in Preservica, the folder an ingest went into or the entity an export came from."""

    name = "Preservica entity"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return _ENTITY.url(operator)


WORKFLOW_URL_XCOM_KEY = "preservica_workflow_url"


def workflow_url(base_url: str, instance_id: str) -> str:
    """The workflow instance's record in Preservica's Workflow API, with its errors.

    Preservica does not document a web-UI address for one workflow instance; this is the record the
    Workflows screen shows, readable by a browser signed in to Preservica.
    """
    return f"{base_url.rstrip('/')}/sdb/rest/workflow/instances/{instance_id}?includeErrors=true"


_WORKFLOW = _LinkSlot(WORKFLOW_URL_XCOM_KEY, "_preservica_workflow_url")
show_workflow = _WORKFLOW.show
restore_workflow = _WORKFLOW.restore


class PreservicaWorkflowLink(BaseOperatorLink):
    """Opens the workflow instance a task started."""

    name = "Preservica workflow"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return _WORKFLOW.url(operator)
