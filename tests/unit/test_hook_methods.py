"""The hook's thin wrappers say what the feature functions they call say (no network)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from airflow_provider_preservica.hooks.preservica import METADATA_WORKERS, PreservicaHook
from airflow_provider_preservica.metadata import apply
from airflow_provider_preservica.metadata.runner import DEFAULT_WORKERS


def _options(function: Callable[..., object], skip: int) -> dict[str, object]:
    parameters = list(inspect.signature(function).parameters.values())[skip:]
    return {p.name: p.default for p in parameters}


def test_update_metadata_takes_the_options_and_defaults_of_metadata_apply() -> None:
    assert METADATA_WORKERS == DEFAULT_WORKERS
    assert _options(PreservicaHook.update_metadata, 1) == _options(apply.update_metadata, 1)  # self / preservica
    assert _options(PreservicaHook.update_entity, 1) == _options(apply.update_entity, 1)
