"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_preservica import __version__

PACKAGE_NAME = "airflow-provider-preservica"
HOOK_CLASS = "airflow_provider_preservica.hooks.preservica.PreservicaHook"

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {"host": "Preservica server", "login": "Username", "password": "Password"},
    "placeholders": {
        "host": "eu.preservica.com  (or https://preservica.example.org)",
        "login": "api-user@example.org",
        "tenant": "MYTENANT",
        "two_fa_secret": "base32 TOTP seed, only for 2FA accounts",
        "ca_bundle": "/etc/ssl/certs/my-ca.pem",
    },
}

# Declarative form fields (Airflow 3.2+). Values are stored in Connection.extra under these names.
CONN_FIELDS: dict[str, Any] = {
    "tenant": {
        "label": "Tenant",
        "description": "Preservica tenant short name, e.g. MYTENANT; optional on single-tenant systems.",
        "schema": {"type": ["string", "null"]},
    },
    "two_fa_secret": {
        "label": "2FA secret",
        "description": "Base32 TOTP seed (e.g. JBSWY3DPEHPK3PXP) of an account with two-factor authentication. "
        "Leave empty otherwise.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "verify_ssl": {
        "label": "Verify TLS certificate",
        "description": "Check the server's TLS certificate. Turn off only for a throwaway test system.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "ca_bundle": {
        "label": "CA bundle path",
        "description": "PEM file of a private certificate authority to trust, e.g. /etc/ssl/certs/my-ca.pem "
        "(optional).",
        "schema": {"type": ["string", "null"]},
    },
    "cache_mode": {  # not "token_cache": Airflow masks extras whose name contains "token"
        "label": "Token cache",
        "description": "'variable' shares one token between all tasks through an Airflow Variable; "
        "'memory' keeps it per process (for deployments that forbid tokens in Variables).",
        "schema": {"type": ["string", "null"], "enum": ["variable", "memory", None], "default": "variable"},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Per-request timeout.",
        "schema": {"type": ["integer", "null"], "default": 60, "minimum": 1},
    },
    "allow_http": {
        "label": "Allow plain http",
        "description": "Permit http:// to a non-loopback host (a Host without a scheme is then reached over http). "
        "Credentials then cross the network unencrypted.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": PACKAGE_NAME,
        "versions": [__version__],
        "name": "Preservica",
        "description": "`Preservica <https://preservica.com/>`__ digital preservation: search, ingest and export "
        "with a token shared by every task.",
        "integrations": [
            {
                "integration-name": "Preservica",
                "external-doc-url": "https://developers.preservica.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Preservica", "python-modules": ["airflow_provider_preservica.hooks.preservica"]}
        ],
        "operators": [
            {
                "integration-name": "Preservica",
                "python-modules": [
                    "airflow_provider_preservica.operators.search",
                    "airflow_provider_preservica.operators.ingest",
                    "airflow_provider_preservica.operators.export",
                    "airflow_provider_preservica.operators.metadata",
                    "airflow_provider_preservica.operators.changes",
                    "airflow_provider_preservica.operators.workflow",
                    "airflow_provider_preservica.operators.deletion",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "Preservica", "python-modules": ["airflow_provider_preservica.sensors.progress"]}
        ],
        "triggers": [
            {
                "integration-name": "Preservica",
                "python-modules": [
                    "airflow_provider_preservica.triggers.progress",
                    "airflow_provider_preservica.triggers.changes",
                    "airflow_provider_preservica.triggers.workflow",
                ],
            }
        ],
        "extra-links": [
            "airflow_provider_preservica.links.PreservicaEntityLink",
            "airflow_provider_preservica.links.PreservicaWorkflowLink",
        ],
        "connection-types": [
            {
                "connection-type": "preservica",
                "hook-class-name": HOOK_CLASS,
                "hook-name": "Preservica",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
