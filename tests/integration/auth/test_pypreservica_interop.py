"""``hook.get_pypreservica_client``: pyPreservica code in tasks shares the hook's token (no login of its own)."""

from __future__ import annotations

import pytest

from airflow_provider_preservica.exceptions import PreservicaConfigError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support.airflow_db import task_states
from tests.support.sandbox import MAPS_FOLDER, logins

pytestmark = pytest.mark.integration


def test_pypreservica_tasks_share_one_login_and_recover_from_a_revoked_token(small_repository, run_dag, monkeypatch):
    monkeypatch.setenv("PRESERVICA_SANDBOX_URL", small_repository.base_url)

    dag_run = run_dag("pypreservica_interop.py", "pypreservica_interop_dag")

    states = task_states(dag_run)
    assert set(states.values()) == {"success"}, states
    # One login for the four tasks before the revocation (pyPreservica alone: four), one after it.
    assert logins(small_repository) == 2
    titles = {dag_run.get_task_instance("folder_title", map_index=i).xcom_pull(map_indexes=i) for i in range(3)}
    assert titles == {PreservicaHook().entities.get(MAPS_FOLDER).title}
    open_assets = PreservicaHook().search("%", filters={"xip.security_descriptor": "open", "xip.document_type": "IO"})
    assert (
        dag_run.get_task_instance("count_open_assets").xcom_pull(task_ids="count_open_assets")
        == len(list(open_assets))
        > 0
    )
    children = PreservicaHook().entities.children(MAPS_FOLDER)
    assert (
        dag_run.get_task_instance("children_after_revocation").xcom_pull(task_ids="children_after_revocation")
        == len(list(children))
        > 0
    )


def test_a_class_that_is_not_a_pypreservica_api_is_refused(preservica_conn):
    with pytest.raises(PreservicaConfigError, match="not a pyPreservica API class"):
        PreservicaHook().get_pypreservica_client(dict)  # type: ignore[arg-type]
