"""The one place that speaks HTTP to Preservica."""

from airflow_provider_preservica.client.http import HttpTransport
from airflow_provider_preservica.client.rest import PreservicaClient

__all__ = ["HttpTransport", "PreservicaClient"]
