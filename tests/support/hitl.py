"""Answering Airflow's human-in-the-loop tasks from a test, as a person in the Required Actions screen would."""

from __future__ import annotations

import threading

import pytest
from airflow import __version__ as AIRFLOW_VERSION


def _below(version: str, major: int, minor: int) -> bool:
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    return tuple(parts) < (major, minor)


#: On Airflow 3.1, ``dag.test()`` runs a deferred task's trigger under an in-process supervisor that answers the
#: human-in-the-loop trigger's ``GetHITLDetail`` request with "Unhandled request": the approval task fails at once
#: and no person can answer it. A deployment's triggerer handles it; these tests need it inside ``dag.test()``.
needs_hitl_in_dag_test = pytest.mark.skipif(
    _below(AIRFLOW_VERSION, 3, 2),
    reason=f"Airflow {AIRFLOW_VERSION}: dag.test() cannot run the human-in-the-loop trigger (Unhandled request)",
)


class Respondent:
    """Answers the approval task as a person would in the Required Actions screen, through the same
    Airflow function the UI's REST call runs (``update_hitl_detail``)."""

    def __init__(self, dag_id: str, task_id: str, option: str) -> None:
        self.dag_id, self.task_id, self.option = dag_id, task_id, option
        self.answered = threading.Event()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Respondent:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _waiting_run_id(self) -> str | None:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            row = session.execute(
                select(TaskInstance.run_id)
                .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
                .where(TaskInstance.dag_id == self.dag_id, TaskInstance.task_id == self.task_id)
                .where(TaskInstance.state.in_(["awaiting_input", "deferred"]))
            ).first()
            return row[0] if row else None

    def _run(self) -> None:
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
        from airflow.utils.session import create_session

        class Curator:
            def get_id(self) -> str:
                return "cora"

            def get_name(self) -> str:
                return "Cora Curator"

        try:
            while not self._stop.is_set():
                run_id = self._waiting_run_id()
                if run_id is not None:
                    with create_session() as session:
                        update_hitl_detail(
                            dag_id=self.dag_id,
                            dag_run_id=run_id,
                            task_id=self.task_id,
                            update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[self.option]),
                            user=Curator(),  # type: ignore[arg-type]
                            session=session,
                        )
                    self.answered.set()
                    return
                self._stop.wait(0.2)
        except BaseException as exc:  # reported by the test
            self.error = exc
