"""Where the provider's errors meet Airflow: which of them end a task without retries.

A rejected login must not be retried: every try is one more failed login, and real Preservica accounts
lock after a few. Operators and sensors decorate ``execute``, ``execute_complete`` (and ``poke``) with
:func:`task_errors`, which turns such an error - raised directly, or as the cause or context of whatever the
code raised while handling it - into ``AirflowFailException`` with the same message. Everything else
(server faults, lost connections) passes unchanged and keeps its retries.

A trigger cannot raise for the task: :func:`error_event` puts ``retryable`` into its error event, and
:func:`event_error` makes the exception the resumed task raises from it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from airflow_provider_preservica.compat import AirflowException, AirflowFailException
from airflow_provider_preservica.exceptions import PreservicaError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)
NO_RETRY_NOTE = "Failing without retries: another try would be one more refused login, and Preservica locks accounts"


def not_retryable(exc: BaseException) -> PreservicaError | None:
    """The non-retryable provider error behind ``exc`` (itself, its cause or its context), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, PreservicaError) and not current.retryable:
            return current
        current = current.__cause__ or current.__context__
    return None


def task_errors(method: F) -> F:
    """Decorate an operator's ``execute``/``execute_complete`` or a sensor's ``poke`` (see the module docstring)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except AirflowFailException:
            raise
        except Exception as exc:
            if not_retryable(exc) is None:
                raise
            log.error("%s", NO_RETRY_NOTE)
            raise AirflowFailException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def error_event(exc: BaseException, **fields: Any) -> dict[str, Any]:
    """A trigger's error event payload for ``exc``: its message, and whether another try may succeed."""
    return {
        "status": "error",
        **fields,
        "message": f"{type(exc).__name__}: {exc}",
        "retryable": not_retryable(exc) is None,
    }


def event_error(event: Mapping[str, Any], message: str) -> AirflowException:
    """The exception a task raises for an unsuccessful trigger event: no retries when the trigger said so."""
    if event.get("retryable") is False:
        log.error("%s", NO_RETRY_NOTE)
        return AirflowFailException(message)
    return AirflowException(message)
