"""Real Airflow on the session's SQLite database: the ``airflow_db`` and ``run_dag`` fixtures, task states,
Variables, and the DAG bundles serialised once.

A ``conftest.py`` that needs the fixtures imports them (``from tests.support.airflow_db import airflow_db,
run_dag``); everything here imports Airflow lazily, inside functions, so that importing this module sets nothing
up (the benchmarks import it with an Airflow home of their own).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO

DAGS = REPO / "tests" / "dags"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow.utils import db

    db.resetdb()
    one_execution_api_per_process()


def one_execution_api_per_process() -> None:
    """``dag.test()`` on Airflow 3.1 builds its in-process Execution API anew for every task it runs.

    That FastAPI app (every route, every API version) costs 2 to 3 s of CPU to build: most of what makes a
    ``dag.test()`` 3 to 4 times slower on 3.1 than on 3.3, which builds it once per process
    (``functools.lru_cache`` on ``supervisor.in_process_api_server``). 3.1 gets the same cache here; each run
    still gets a fresh DagBag (``_api_client(dag)`` sets it on the app every time, on both versions).
    """
    from airflow.sdk.execution_time import supervisor

    if not hasattr(supervisor.in_process_api_server, "cache_info"):
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(supervisor.in_process_api_server)


def load_dag(file: str, attribute: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"test_dags_{Path(file).stem}", DAGS / file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


@pytest.fixture
def run_dag(airflow_db: None) -> Callable[..., Any]:
    """Run a DAG from ``tests/dags`` with ``dag.test()`` and return the finished DagRun."""

    def _run(file: str, attribute: str, **kwargs: Any) -> Any:
        return load_dag(file, attribute).test(**kwargs)

    return _run


def task_states(dag_run: Any) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in dag_run.get_task_instances()}


def variable(key: str) -> str | None:
    """Read a Variable straight from the metadata DB, as an operator inspecting the cache would."""
    from airflow.models import Variable

    return Variable.get(key, default_var=None)


def set_variable(key: str, value: str) -> None:
    from airflow.models import Variable

    Variable.set(key, value)


def delete_variable(key: str) -> None:
    from airflow.models import Variable

    Variable.delete(key)


def sync_test_dags() -> None:
    """Serialise the test DAGs once, so that parallel ``dag.test()`` processes do not race to insert them."""
    sync_dag_bundles()


def bundle_dag_bag(folder: str | Path, bundle_name: str) -> Any:
    """Parse ``folder`` as the DAG bundle ``bundle_name`` (Airflow 3.1 keeps the class elsewhere, without a name)."""
    try:
        from airflow.dag_processing.dagbag import BundleDagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import BundleDagBag  # type: ignore[attr-defined,no-redef]

    try:
        return BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name=bundle_name)
    except TypeError:  # Airflow 3.1: no bundle_name
        return BundleDagBag(dag_folder=folder, bundle_path=folder)


def sync_dag_bag(bag: Any, bundle_name: str, version: str | None = None) -> None:
    try:
        from airflow.dag_processing.dagbag import sync_bag_to_db
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import sync_bag_to_db  # type: ignore[attr-defined,no-redef]

    sync_bag_to_db(bag, bundle_name, version)


def sync_dag_bundles() -> None:
    """Parse the DAG bundles once, as each ``dag.test()`` does, so that parallel runs do not race to insert."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils.session import create_session

    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        sync_dag_bag(bundle_dag_bag(bundle.path, bundle.name), bundle.name, bundle.version)
