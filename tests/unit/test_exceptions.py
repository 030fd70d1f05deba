"""One exception hierarchy in one module: every error the provider defines is a ``PreservicaError``, and
``airflow_provider_preservica.exceptions`` is where each public one lives (older paths re-export it).

The package is walked by importing every module (the ``sandbox`` shim excepted: it is the other
distribution), so a class added anywhere later is checked too.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache

import pytest

import airflow_provider_preservica
from airflow_provider_preservica import exceptions
from airflow_provider_preservica.exceptions import PreservicaConfigError, PreservicaError

SKIPPED = {"airflow_provider_preservica.sandbox"}  # the 0.1 shim forwarding to preservica_sandbox

#: Where each error was defined before it moved to ``exceptions``: these paths must keep working.
OLD_PATHS = {
    "airflow_provider_preservica.auth.login": ["RefreshRejected"],
    "airflow_provider_preservica.auth.stores": ["TokenStoreUnavailable"],
    "airflow_provider_preservica.client.bitstreams": ["BitstreamMismatchError"],
    "airflow_provider_preservica.client.deletions": ["DeletionRefusedError"],
    "airflow_provider_preservica.client.entities": ["EntityNotFoundError", "EntityTypeMismatchError", "KIND_NAMES"],
    "airflow_provider_preservica.client.progress": ["ProgressTokenUnknownError", "ProgressTimeoutError"],
    "airflow_provider_preservica.client.search": ["PreservicaSearchError"],
    "airflow_provider_preservica.client.workflows": ["WorkflowContextNotFoundError", "WorkflowInstanceUnknownError"],
    "airflow_provider_preservica.deletion.manifest": ["ManifestTooLargeError"],
    "airflow_provider_preservica.deletion.runner": ["ManifestChangedError", "DeletionFailedError"],
    "airflow_provider_preservica.metadata.sheetfile": ["SheetError"],
    "airflow_provider_preservica.packaging.bounded_xml": ["DocumentRefused"],
    "airflow_provider_preservica.packaging.errors": [
        "PackagingError",
        "PackageValidationError",
        "MissingSecurityTagError",
        "FixityError",
        "MissingSourceFilesError",
        "PackageFormatError",
        "UnsafeArchiveError",
        "SourceChangedError",
    ],
    "airflow_provider_preservica.staging": ["StagingError", "NothingDelivered"],
    "airflow_provider_preservica.utils.totp": ["InvalidTotpSecret"],
}


@cache
def defined_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in a module of the provider, found by importing all of them."""
    found: list[type[BaseException]] = []
    names = [airflow_provider_preservica.__name__] + [
        info.name
        for info in pkgutil.walk_packages(
            airflow_provider_preservica.__path__, airflow_provider_preservica.__name__ + "."
        )
    ]
    for name in names:
        if name in SKIPPED or any(name.startswith(skipped + ".") for skipped in SKIPPED):
            continue
        module = importlib.import_module(name)
        found += [
            value
            for value in vars(module).values()
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == name
        ]
    return found


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_the_walk_finds_the_errors_of_every_layer() -> None:
    modules = {cls.__module__ for cls in defined_exceptions()}
    assert "airflow_provider_preservica.exceptions" in modules
    assert len(defined_exceptions()) >= 40


def test_every_provider_exception_is_a_preservica_error() -> None:
    outside = [
        f"{_where(cls)} derives from {', '.join(base.__name__ for base in cls.__mro__[1:])}"
        for cls in defined_exceptions()
        if not issubclass(cls, PreservicaError)
    ]
    assert not outside, (
        "every exception the provider defines must derive from exceptions.PreservicaError (keep a builtin base "
        "such as ValueError next to it where callers catch that):\n  " + "\n  ".join(outside)
    )


def test_every_public_exception_is_defined_in_and_exported_by_exceptions() -> None:
    """Private ones (``_RowInvalid``) never leave their module, so they may stay there, still PreservicaErrors."""
    elsewhere = [
        _where(cls)
        for cls in defined_exceptions()
        if not cls.__name__.startswith("_")
        and (getattr(exceptions, cls.__name__, None) is not cls or cls.__name__ not in exceptions.__all__)
    ]
    assert not elsewhere, (
        "define public exceptions in airflow_provider_preservica/exceptions.py (and list them in its __all__); "
        "re-export them from their old module if it had them:\n  " + "\n  ".join(elsewhere)
    )


@pytest.mark.parametrize(("module", "names"), sorted(OLD_PATHS.items()))
def test_old_import_paths_give_the_same_classes(module: str, names: list[str]) -> None:
    """``except`` clauses written against the old path catch exactly what they caught before."""
    imported = importlib.import_module(module)
    for name in names:
        assert getattr(imported, name) is getattr(exceptions, name), f"{module}.{name} is not exceptions.{name}"


def test_builtin_bases_and_retry_flags_are_kept() -> None:
    assert issubclass(exceptions.DocumentRefused, ValueError)  # verification and the OPEX reader catch ValueError
    assert issubclass(exceptions.InvalidTotpSecret, ValueError)
    assert issubclass(exceptions.InvalidTotpSecret, PreservicaConfigError)
    assert issubclass(exceptions.NothingDelivered, exceptions.StagingError)
    assert exceptions.ManifestChangedError.retryable is False
    assert exceptions.PreservicaLoginRejectedError.retryable is False
    assert exceptions.StagingError.retryable and exceptions.TokenStoreUnavailable.retryable  # as before: retried
