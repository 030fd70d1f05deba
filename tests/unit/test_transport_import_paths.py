"""The transport's old import paths (before issue 21 moved it into ``client/``) still work, and warn."""

from __future__ import annotations

import importlib

import pytest

from airflow_provider_preservica.client import http, redirects

OLD_PATHS = [
    ("airflow_provider_preservica.transport", http, "HttpTransport"),
    ("airflow_provider_preservica.transport", http, "effective_verify"),
    ("airflow_provider_preservica.transport", http, "guard_session"),
    ("airflow_provider_preservica.transport", http, "RETRY_STATUSES"),
    ("airflow_provider_preservica.client.transport", http, "HttpTransport"),
    ("airflow_provider_preservica.redirects", redirects, "refuse_off_origin_redirect"),
    ("airflow_provider_preservica.redirects", redirects, "origin_text"),
]


@pytest.mark.parametrize(("old", "new", "name"), OLD_PATHS)
def test_an_old_path_gives_the_same_object_with_a_deprecation_warning(old, new, name):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} is deprecated; import it from {new.__name__}"):
        assert getattr(module, name) is getattr(new, name)


def test_an_unknown_name_is_an_attribute_error():
    module = importlib.import_module("airflow_provider_preservica.transport")
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018
