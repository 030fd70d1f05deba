"""pyPreservica clients that take their access token from our shared cache instead of logging in.

Existing pyPreservica code moves into Airflow tasks unchanged except for how the client is made::

    from pyPreservica import EntityAPI

    entity = PreservicaHook("preservica_prod").get_pypreservica_client(EntityAPI)
    folder = entity.folder(ref)

pyPreservica asks for a token in exactly one place, its ``__token__`` method: at construction and when a
request comes back 401. The client class returned here overrides that method: the first call takes the
token every other task shares; a later call means the server rejected the token, so that token (and only
that one) is dropped from the cache before a fresh one is taken, once per rejection, as our own client does.
The password is handed to pyPreservica only because its constructor insists on one; it is never sent.
Its session gets our transport's guards (``client.http.guard_session``): the Connection's TLS setting holds
whatever ``REQUESTS_CA_BUNDLE`` says, and no redirect takes the token off the origin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_preservica.client.http import effective_verify, guard_session
from airflow_provider_preservica.exceptions import PreservicaConfigError

if TYPE_CHECKING:
    from airflow_provider_preservica.client.auth.cache import TokenCache
    from airflow_provider_preservica.client.auth.token import AccessToken
    from airflow_provider_preservica.connection.settings import PreservicaSettings

ApiT = TypeVar("ApiT")


def _shared_token(self: Any) -> str:
    """pyPreservica's ``__token__``, answered from the shared cache."""
    cache: TokenCache = self._airflow_token_cache
    held: AccessToken | None = getattr(self, "_airflow_token", None)
    if held is not None:  # pyPreservica only asks again after a 401
        cache.invalidate(held)
    else:  # the first call comes before any other request
        guard_session(self.session, self._airflow_base_url, effective_verify(self._airflow_verify))
    token = cache.get_token()
    self._airflow_token = token
    return token.value


def pypreservica_client(api_class: type[ApiT], settings: PreservicaSettings, cache: TokenCache, **kwargs: Any) -> ApiT:
    """An instance of pyPreservica's ``api_class`` (``EntityAPI``, ``ContentAPI``, ``UploadAPI``...)."""
    from pyPreservica.common import AuthenticatedAPI

    if not (isinstance(api_class, type) and issubclass(api_class, AuthenticatedAPI)):
        raise PreservicaConfigError(
            f"{api_class!r} is not a pyPreservica API class; pass one such as pyPreservica.EntityAPI"
        )
    url = urlsplit(settings.base_url)
    # Class attributes, not instance ones: the constructor asks for the token before it returns.
    shared = type(
        f"Shared{api_class.__name__}",
        (api_class,),
        {
            "__token__": _shared_token,
            "_airflow_token_cache": cache,
            "_airflow_verify": settings.verify,
            "_airflow_base_url": settings.base_url,
        },
    )
    return shared(
        username=settings.username,
        password=settings.password,
        tenant=settings.tenant,
        server=url.netloc,
        protocol=url.scheme,
        two_fa_secret_key=settings.totp_secret,
        **kwargs,
    )
