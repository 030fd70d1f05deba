"""What the tests and the benchmarks share: fakes, sandbox helpers and launchers, Airflow database helpers.

Tests import shared code from here only (never from another test module or a ``conftest.py``), and the
benchmarks (``python -m benchmarks.<name>``) import it too. Importing this package sets nothing up; the one
module with an import-time effect is ``session``, which ``tests/conftest.py`` imports first.

- ``accounts``: the sandbox accounts of a test session and the secrets the log audit searches for.
- ``clock``: ``FakeClock``, wall-clock seconds that move only when a test says so.
- ``sandbox``: Connections to the sandbox, its login counts, faults, the tokens it issued.
- ``sandbox_process``: the sandbox as an OS process (the benchmarks measure the client alone).
- ``session``: the session's folders and Airflow environment (import-time: only ``tests/conftest.py``).
- ``airflow_db``: the ``airflow_db``/``run_dag`` fixtures, task states, Variables, DAG bundles.
- ``example_dags``: the example DAGs loaded as they ship, run with ``dag.test()`` (``tests/system``).
- ``airflow_processes``: a private Airflow as OS processes (scheduler tests); ``airflow_ui``: the browser test's.
- ``operators``: stand-in task instances and the deliveries and sheets the operator tests build.
- ``token_race``: task processes that ask for a token at the same moment.
- ``hitl``: answering Airflow's human-in-the-loop tasks.
- ``tls``: a self-signed certificate and a TLS server in front of the sandbox.
- ``ingest_helpers``, ``export_helpers``, ``repository_tree``: hand-made wire documents and repositories for
  the sandbox's own tests.
- ``deployment``, ``distributed``, ``compose_file``: the distributed deployment and ``docker-compose.yaml``.
"""

from __future__ import annotations

from pathlib import Path

#: The repository's root folder.
REPO = Path(__file__).resolve().parents[2]
