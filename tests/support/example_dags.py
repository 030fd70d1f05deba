"""The example DAGs (``example_dags/``) as the system tests run them: loaded as they ship, run with ``dag.test()``."""

from __future__ import annotations

from typing import Any

from tests.support import REPO
from tests.support.airflow_db import bundle_dag_bag, sync_dag_bag, task_states

EXAMPLES = REPO / "example_dags"


def load_examples() -> Any:
    """Every example DAG, parsed as the ``dags-folder`` bundle and serialised (``dag.test()`` needs them in the DB).

    None may fail to import.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    bag = bundle_dag_bag(EXAMPLES, "dags-folder")
    assert bag.import_errors == {}
    sync_dag_bag(bag, "dags-folder")
    return bag


def run_example(examples: Any, dag_id: str, **kwargs: Any) -> Any:
    """Run the example DAG ``dag_id`` once with ``dag.test()``; returns the DagRun."""
    return examples.dags[dag_id].test(**kwargs)


def states(dag_run: Any) -> dict[str, str]:
    """Each task's state by task id (a mapped task's by ``task_id[index]``)."""
    return {key.removesuffix("[-1]"): value for key, value in task_states(dag_run).items()}
