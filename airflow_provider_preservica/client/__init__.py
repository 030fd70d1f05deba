"""The one place that speaks HTTP to Preservica."""

from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.transport import HttpTransport

__all__ = ["HttpTransport", "PreservicaClient"]
