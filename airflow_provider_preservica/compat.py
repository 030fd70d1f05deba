"""Names that moved between the Airflow releases the provider supports (3.1 to 3.3).

3.3 offers ``conf`` from ``airflow.sdk`` and the task exceptions from ``airflow.sdk.exceptions``; 3.1 has
them only in ``airflow.configuration`` and ``airflow.exceptions`` (the same objects there in 3.3, where
importing them from there warns). DAG authors who must run on 3.1 too can import them from here, as the
example DAGs do.
"""

from __future__ import annotations

try:
    from airflow.sdk import conf
except ImportError:  # Airflow 3.1
    from airflow.configuration import conf  # type: ignore[assignment]

try:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowSkipException,
    )

__all__ = ["AirflowException", "AirflowFailException", "AirflowSkipException", "conf"]
