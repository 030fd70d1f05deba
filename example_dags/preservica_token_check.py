"""Who am I on Preservica? Log in once and let many parallel tasks share that one token.

Run it against the sandbox with ``make demo``, or against your own system:

    export AIRFLOW_CONN_PRESERVICA_DEFAULT='{"conn_type": "preservica", "host": "eu.preservica.com",
        "login": "me@example.org", "password": "...", "extra": {"tenant": "MYTENANT"}}'
    airflow dags test preservica_token_check

Every probe task asks ``PreservicaHook`` for the server version; only the first one logs in, the
others take the token from the ``preservica_access_token__preservica_default`` Variable.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from airflow_provider_preservica.hooks import PreservicaHook

PROBES = 8


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["preservica", "example"],
    params={"preservica_conn_id": "preservica_default"},
)
def preservica_token_check():
    @task
    def whoami(params: dict | None = None) -> dict[str, str]:
        conn_id = (params or {}).get("preservica_conn_id", "preservica_default")
        hook = PreservicaHook(conn_id)
        client = hook.get_conn()
        details = client.user_details()
        account = {
            "server": client.base_url,
            "preservica_version": client.server_version(),
            "user": str(details.get("userName") or details.get("user") or hook.settings.username),
            "tenant": str(details.get("tenant") or hook.settings.tenant or ""),
            "roles": ", ".join(details.get("roles", [])),
        }
        print(
            f"Reached Preservica {account['preservica_version']} at {account['server']} as "
            f"{account['user']} (tenant {account['tenant']}; roles {account['roles']})"
        )
        return account

    @task
    def probe(index: int, params: dict | None = None) -> str:
        conn_id = (params or {}).get("preservica_conn_id", "preservica_default")
        return PreservicaHook(conn_id).get_conn().server_version()

    @task
    def summary(account: dict[str, str], versions: list[str]) -> str:
        line = f"{len(versions)} parallel probes reached Preservica {sorted(set(versions))} as {account['user']}"
        print(line)
        return line

    account = whoami()
    versions = probe.expand(index=list(range(PROBES)))
    account >> versions
    summary(account, versions)


preservica_token_check()
