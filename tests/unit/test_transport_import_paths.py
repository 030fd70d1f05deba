"""The transport's old import paths (before issue 21 moved it into ``client/``) give every name they had.

``_moved`` maps the old modules to the new ones (``tests/unit/test_moved.py`` checks that each warns and is the
same module object); this file checks the names users imported from them are all still there.
"""

from __future__ import annotations

import importlib
import warnings

import pytest

from airflow_provider_preservica.client import http, redirects

#: Every public name the old modules had (0.2.0, before the move).
OLD_NAMES = {
    "airflow_provider_preservica.transport": (
        http,
        [
            "HttpTransport",
            "IDEMPOTENT_METHODS",
            "REFUSED_BEFORE_PROCESSING",
            "RETRY_STATUSES",
            "USER_AGENT",
            "describe_connection_failure",
            "effective_verify",
            "guard_session",
            "parse_retry_after",
        ],
    ),
    "airflow_provider_preservica.client.transport": (http, ["HttpTransport"]),
    "airflow_provider_preservica.redirects": (
        redirects,
        ["DEFAULT_PORTS", "origin_of", "origin_text", "refuse_off_origin_redirect"],
    ),
}


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_an_old_path_gives_every_name_it_had_as_the_same_object(old):
    new, names = OLD_NAMES[old]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(old)
    for name in names:
        assert getattr(module, name) is getattr(new, name), name
