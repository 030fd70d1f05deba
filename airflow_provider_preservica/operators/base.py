"""``PreservicaBaseOperator``: the lifecycle every operator of a long-running Preservica job shares.

1. **Hook**: :attr:`hook`, one per task try (built on first use, with the rendered ``preservica_conn_id``).
2. **Adopt or start**: :meth:`adopt` reads the in-flight record of the task's job (``jobs``) and takes the job
   over when an earlier try of this run started it, or when it still runs; else the operator starts a job and
   :meth:`remember` records it, before anything else can fail.
3. **Link**: :meth:`show_link` pushes the job's link (XCom and the task's button) before any waiting.
4. **Wait or defer**: :meth:`wait_or_defer` waits in the worker, or with ``deferrable`` defers to the
   progress tokens trigger (``triggers.progress``) unless the work has already finished; ``poll_interval``
   and ``timeout`` hold for both. :meth:`defer_tokens` defers for several tokens.
5. **Resume**: :meth:`resumed` in ``execute_complete`` restores the link and turns an unsuccessful trigger
   event into the task's error (retryable unless the trigger said otherwise). Everything else is rebuilt
   from the context, since ``dag.test()`` drops the ``kwargs`` of ``defer()``.
6. **Forget**: :meth:`forget` once the job's outcome is known (or its token was handed on).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from airflow.sdk import BaseOperator

from airflow_provider_preservica.compat import AirflowException, conf
from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.jobs import InFlightJob, JobRegistry, task_series
from airflow_provider_preservica.links import restore_entity, restore_workflow, show_entity, show_workflow
from airflow_provider_preservica.task_errors import event_error
from airflow_provider_preservica.triggers.progress import PreservicaProgressTokensTrigger, PreservicaProgressTrigger

S = TypeVar("S")
_LINKS = {"entity": (show_entity, restore_entity), "workflow": (show_workflow, restore_workflow)}


class PreservicaBaseOperator(BaseOperator):
    """Base of the operators that start remote work in Preservica and wait for it (see the module docstring).

    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param poll_interval: seconds between progress checks.
    :param timeout: seconds to wait for the outcome before failing (the message names the progress token).
    """

    job_kind: ClassVar[str] = "job"  # the in-flight record's kind, the start of its batch id, the noun in logs
    link_kind: ClassVar[str | None] = None  # "entity" or "workflow": the task's link button
    batch_prefix: ClassVar[str | None] = None  # the start of its batch id, when not ``job_kind``

    def __init__(
        self,
        *,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 15.0,
        timeout: float = 6 * 3600.0,
        preservica_conn_id: str = PreservicaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.preservica_conn_id = preservica_conn_id

    @cached_property
    def hook(self) -> PreservicaHook:
        """The task try's one hook (the operator object lives for one try, or one resumption)."""
        return PreservicaHook(self.preservica_conn_id)

    # -- the in-flight record -------------------------------------------------------------------------------
    @cached_property
    def registry(self) -> JobRegistry:
        return JobRegistry()

    def job_batch(self, context: Any, suffix: str = "") -> str:
        """The batch of this task instance's job: the same for every try of a run, rebuilt from the context."""
        ti = context["ti"]
        batch = (
            f"{self.batch_prefix or self.job_kind}/{ti.dag_id}/{ti.task_id}/{ti.run_id}/{getattr(ti, 'map_index', -1)}"
        )
        return f"{batch}/{suffix}" if suffix else batch

    def series(self, context: Any) -> str:
        return task_series(context["ti"], self.retries)

    def adopt(
        self,
        context: Any,
        batch: str,
        read: Callable[[str], S],
        *,
        unknown: type[Exception],
        adoptable: Callable[[S, bool], bool],
        describe: Callable[[S], str] = str,
    ) -> str | None:
        """The token of the job an earlier try recorded for ``batch``, taken over, or ``None`` to start afresh.

        ``read(token)`` looks at the job; ``unknown``: the error that says Preservica has forgotten it (start
        afresh). Any other failed read fails the try: a retry looks again, and no second job is started.
        ``adoptable(state, same_run)`` decides (``same_run``: an earlier try of this run of the task started it).
        """
        record = self.registry.load(batch)
        if record is None:
            return None
        try:
            state = read(record.token)
        except unknown:
            return None  # forgotten by Preservica: start afresh
        except PreservicaError as exc:
            raise AirflowException(
                f"cannot read {self.job_kind} {record.token}, which an earlier try started ({exc}); not starting "
                f"another {self.job_kind}: a retry will look again"
            ) from None
        series = self.series(context)
        if adoptable(state, record.series == series):
            self.log.info("Adopting %s %s from an earlier try (%s)", self.job_kind, record.token, describe(state))
            self.registry.claim(record, series)
            return record.token
        self.log.info(
            "%s %s of an earlier try or run is %s: starting a new one",
            self.job_kind.capitalize(),
            record.token,
            describe(state),
        )
        return None

    def remember(self, context: Any, batch: str, token: str, key: str) -> None:
        """Record the job just started, so that a retry adopts it instead of starting another."""
        self.registry.save(InFlightJob(self.job_kind, batch, token, key, time.time(), series=self.series(context)))

    def forget(self, batch: str) -> None:
        self.registry.forget(batch)

    # -- the link ---------------------------------------------------------------------------------------------
    def show_link(self, context: Any, url: str) -> None:
        if self.link_kind:
            _LINKS[self.link_kind][0](self, context, url)

    # -- waiting ----------------------------------------------------------------------------------------------
    def wait_or_defer(self, token: str) -> None:
        """Return once the progress token has finished: waiting in the worker, or in the triggerer (``defer()``
        raises, and the task resumes in ``execute_complete``)."""
        if self.deferrable and not self.hook.progress(token).finished:
            self.defer(
                trigger=PreservicaProgressTrigger(
                    preservica_conn_id=self.preservica_conn_id,
                    progress_token=token,
                    poll_interval=self.poll_interval,
                    end_time=time.time() + self.timeout,
                    what=self.job_kind,
                ),
                method_name="execute_complete",
            )
        try:
            self.hook.wait_for_progress(
                token, poll_interval=self.poll_interval, timeout=self.timeout, what=self.job_kind
            )
        except PreservicaError as exc:
            raise AirflowException(str(exc)) from None  # the record stays: a retry adopts the job

    def defer_tokens(self, tokens: list[str], *, end_time: float, **trigger: Any) -> None:
        """Wait in the triggerer for every token (``trigger``: ``stop_at_pending``, ``carry``); never returns."""
        self.defer(
            trigger=PreservicaProgressTokensTrigger(
                preservica_conn_id=self.preservica_conn_id,
                progress_tokens=tokens,
                poll_interval=self.poll_interval,
                end_time=end_time,
                what=self.job_kind,
                **trigger,
            ),
            method_name="execute_complete",
        )
        raise AssertionError("defer() returns only by raising")  # pragma: no cover

    def resumed(self, context: Any, event: Mapping[str, Any] | None) -> dict[str, Any]:
        """In ``execute_complete``: the link shown before the deferral, and the event if the wait finished."""
        event = dict(event or {})
        if self.link_kind:
            _LINKS[self.link_kind][1](self, context)
        if event.get("status") != "finished":
            raise event_error(event, event.get("message") or f"waiting for the {self.job_kind} failed: {event}")
        return event
