"""Real Airflow on its embedded SQLite database: DAGs run with ``dag.test()`` in this process."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[1] / "dags"


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
    from benchmarks.fault_scenarios import sync_dag_bundles

    sync_dag_bundles()
