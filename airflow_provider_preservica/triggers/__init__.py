"""The triggers: wait in the triggerer for Preservica's background work or its changes.

Airflow stores a trigger's full classpath (``triggers.progress.PreservicaProgressTrigger``), so
these classes never move; this package only names them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_preservica._exports import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_preservica.triggers.changes import PreservicaChangesTrigger, change_payload
    from airflow_provider_preservica.triggers.progress import PreservicaProgressTokensTrigger, PreservicaProgressTrigger
    from airflow_provider_preservica.triggers.workflow import PreservicaWorkflowTrigger

__all__ = [
    "PreservicaChangesTrigger",
    "PreservicaProgressTokensTrigger",
    "PreservicaProgressTrigger",
    "PreservicaWorkflowTrigger",
    "change_payload",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "PreservicaChangesTrigger": ".changes",
        "PreservicaProgressTokensTrigger": ".progress",
        "PreservicaProgressTrigger": ".progress",
        "PreservicaWorkflowTrigger": ".workflow",
        "change_payload": ".changes",
    },
)
