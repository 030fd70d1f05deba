"""The Preservica token as boto3's only source of S3 credentials, through botocore's public provider chain.

botocore finds credentials with a ``CredentialResolver`` (the session's ``credential_provider`` component)
that asks each ``CredentialProvider`` in turn. The uploader registers a resolver holding one provider,
:class:`TokenCredentialProvider`, so the default chain (``AWS_*`` environment variables, ``~/.aws``, instance
metadata...) is never built or asked: an upload signs with the Preservica token or not at all. The provider
returns ``RefreshableCredentials``, which botocore refreshes from the token cache before they expire, so a
multipart upload longer than a token's life keeps going.

This module imports botocore when it is imported: the uploader imports it only when it builds a client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials

METHOD = "preservica-token-cache"


class TokenCredentialProvider(CredentialProvider):
    """Credentials from ``fetch``: a mapping with ``access_key``, ``secret_key``, ``token``, ``expiry_time``."""

    METHOD = METHOD
    CANONICAL_NAME = "customPreservicaToken"  # botocore asks non-botocore providers to start with "custom"

    def __init__(self, fetch: Callable[[], Mapping[str, str]]) -> None:
        super().__init__()
        self._fetch = fetch

    def load(self) -> RefreshableCredentials:
        return RefreshableCredentials.create_from_metadata(
            metadata=dict(self._fetch()),
            refresh_using=lambda: dict(self._fetch()),
            method=METHOD,
            advisory_timeout=90,
            mandatory_timeout=30,
        )


def token_only_session(fetch: Callable[[], Mapping[str, str]]) -> Any:
    """A botocore session whose one credential provider is :class:`TokenCredentialProvider` over ``fetch``."""
    from botocore.session import get_session

    session = get_session()
    session.register_component("credential_provider", CredentialResolver([TokenCredentialProvider(fetch)]))
    return session
