"""A token provider that holds one token and never logs in (used by ``test_connection``)."""

from __future__ import annotations

from airflow_provider_preservica.client.auth.token import AccessToken


class StaticTokenProvider:
    def __init__(self, token: AccessToken) -> None:
        self._token = token

    def get_token(self) -> AccessToken:
        return self._token

    def invalidate(self, failed: AccessToken) -> None:
        """Nothing to drop: a rejected token here is reported, not replaced."""
