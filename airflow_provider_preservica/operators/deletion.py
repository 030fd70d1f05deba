"""Deletion with a human in the loop: a dry-run manifest, an Airflow approval, then the deletion.

A DAG is three tasks::

    manifest = PreservicaDeletionManifestOperator(task_id="manifest", refs=["<folder or asset ref>"])
    approve = ApprovalOperator(  # airflow.providers.standard.operators.hitl, Airflow 3.1+
        task_id="approve",
        subject="Delete from Preservica?",
        body="{{ ti.xcom_pull(task_ids='manifest', key='markdown') }}",
    )
    delete = PreservicaDeleteOperator(
        task_id="delete", manifest_task_id="manifest", approval_task_id="approve",
        manager_conn_id="preservica_manager",
    )
    manifest >> approve >> delete

"Reject" skips the delete task. The delete task also checks for itself that the approval task's answer
is "Approve" (it refuses otherwise, whatever ran it), that the manifest was made for this Preservica
system, and that the repository still matches the manifest (``deletion.runner``).

With ``deferrable=True`` the waits run in the triggerer (``PreservicaProgressTokensTrigger``, as a metadata
run's moves do): the worker requests every deletion, approves those already ``PENDING`` and defers; the
trigger comes back when a request waits for its approval (the worker approves it and defers again) or
when every deletion has finished. The worker checks that each target is gone and reports. Approvals are
sent from the worker only: the triggerer never deletes or approves anything.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_preservica.compat import AirflowFailException, conf
from airflow_provider_preservica.deletion.manifest import (
    DEFAULT_MAX_ENTITIES,
    ManifestTooLargeError,
    build_manifest,
    markdown,
)
from airflow_provider_preservica.deletion.runner import (
    DeferredState,
    DeletionReport,
    DeletionRunner,
    ManifestChangedError,
)
from airflow_provider_preservica.exceptions import EntityNotFoundError, PreservicaError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from airflow_provider_preservica.operators.base import PreservicaBaseOperator
from airflow_provider_preservica.task_errors import task_errors

MARKDOWN_XCOM_KEY = "markdown"
APPROVE = "Approve"  # ApprovalOperator.APPROVE


class PreservicaDeletionManifestOperator(BaseOperator):
    """List what deleting ``refs`` would remove (nothing is deleted): returns the manifest.

    ``refs``: folder and asset references, a list or one string separated by commas or spaces (a folder
    goes with everything below it). The manifest (refs,
    types, titles, parents, sizes of the preservation bitstreams, totals, a fingerprint) is the task's
    return value; its Markdown table is the XCom ``markdown``, for the approval form's ``body``.

    :param include_sizes: add up each asset's preservation bitstreams (a few requests per asset).
    :param max_entities: refuse a deletion that would remove more folders and assets than this.
    """

    template_fields: Sequence[str] = ("refs", "preservica_conn_id")

    def __init__(
        self,
        *,
        refs: list[str] | str,
        include_sizes: bool = True,
        max_entities: int = DEFAULT_MAX_ENTITIES,
        preservica_conn_id: str = PreservicaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.refs = refs
        self.include_sizes = include_sizes
        self.max_entities = max_entities
        self.preservica_conn_id = preservica_conn_id

    @task_errors
    def execute(self, context: Any) -> dict[str, Any]:
        # A string (a template's rendering) may hold several refs, separated by commas or spaces.
        refs = self.refs.replace(",", " ").split() if isinstance(self.refs, str) else list(self.refs)
        hook = PreservicaHook(self.preservica_conn_id)
        try:
            manifest = build_manifest(
                hook.entities,
                refs,
                host=hook.settings.base_url,
                include_sizes=self.include_sizes,
                max_entities=self.max_entities,
            )
        except (EntityNotFoundError, ManifestTooLargeError) as exc:
            raise AirflowFailException(f"{exc}; nothing was deleted") from None  # a retry would find the same
        context["ti"].xcom_push(key=MARKDOWN_XCOM_KEY, value=markdown(manifest))
        self.log.info(
            "Deleting %s would remove %d folder(s) and %d asset(s), %s bytes (fingerprint %s)",
            ", ".join(refs),
            manifest["folders"],
            manifest["assets"],
            f"{manifest['bytes']:,}",
            manifest["fingerprint"][:16],
        )
        return manifest


class PreservicaDeleteOperator(PreservicaBaseOperator):
    """Delete exactly what an approved manifest lists: request each deletion, approve it as the manager.

    :param manifest_task_id: the ``PreservicaDeletionManifestOperator`` task whose manifest was approved.
    :param approval_task_id: the ``ApprovalOperator`` (or ``HITLOperator`` with an ``Approve`` option)
        whose answer must be ``Approve``.
    :param manager_conn_id: a Preservica Connection of **another** account holding the manager role: it
        approves each deletion request, as Preservica requires (pyPreservica's ``manager.username``).
    :param operator_comment: the deletion request's comment (Preservica logs it); templated.
    :param supervisor_comment: the approval's comment; by default names the Airflow user who approved.
    :param deferrable: wait for Preservica's deletion workflow in the triggerer (see the module docstring).

    Returns ``{"deleted": [...], "folders", "assets", "bytes", "approved_by", "requested", "adopted",
    "progress_tokens"}``. A retry takes over the requests of an earlier try (never asks twice).
    """

    template_fields: Sequence[str] = (
        "manifest_task_id",
        "approval_task_id",
        "operator_comment",
        "supervisor_comment",
        "preservica_conn_id",
        "manager_conn_id",
    )
    job_kind = "deletion"
    batch_prefix = "delete"

    def __init__(
        self,
        *,
        manifest_task_id: str,
        approval_task_id: str,
        manager_conn_id: str,
        operator_comment: str = "Deleted by Airflow DAG {{ dag.dag_id }}, run {{ run_id }}",
        supervisor_comment: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 2.0,
        timeout: float = 3600.0,
        preservica_conn_id: str = PreservicaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            preservica_conn_id=preservica_conn_id,
            **kwargs,
        )
        self.manifest_task_id = manifest_task_id
        self.approval_task_id = approval_task_id
        self.manager_conn_id = manager_conn_id
        self.operator_comment = operator_comment
        self.supervisor_comment = supervisor_comment

    def _approver(self, context: Any) -> str:
        """Who approved, or refuse: no answer, or any answer but Approve, deletes nothing."""
        answer = context["ti"].xcom_pull(task_ids=self.approval_task_id)
        chosen = answer.get("chosen_options") if isinstance(answer, dict) else None
        if chosen != [APPROVE]:
            raise AirflowFailException(
                f"refusing to delete: task {self.approval_task_id!r} recorded no approval (its answer: "
                f"{chosen if chosen is not None else 'none'}); nothing was deleted"
            )
        user = answer.get("responded_by_user") or {}
        return str(user.get("name") or user.get("id") or "unknown user") if isinstance(user, dict) else str(user)

    def _manifest(self, context: Any, base_url: str) -> dict[str, Any]:
        manifest = context["ti"].xcom_pull(task_ids=self.manifest_task_id)
        if not isinstance(manifest, dict) or not manifest.get("targets") or "fingerprint" not in manifest:
            raise AirflowFailException(
                f"refusing to delete: task {self.manifest_task_id!r} left no deletion manifest; nothing was deleted"
            )
        if manifest.get("host") != base_url:
            raise AirflowFailException(
                f"refusing to delete: the approved manifest lists entities of {manifest.get('host')}, but "
                f"{self.preservica_conn_id!r} connects to {base_url}; nothing was deleted"
            )
        return manifest

    def _runner(self, context: Any) -> tuple[DeletionRunner, dict[str, Any], str]:
        """The runner, the approved manifest and who approved: every check made again on each call (a
        deferred task resumes in a new worker, and must not trust anything it did not just read)."""
        approver = self._approver(context)
        hook = self.hook
        manager = PreservicaHook(self.manager_conn_id)
        manifest = self._manifest(context, hook.settings.base_url)
        if manager.settings.base_url != hook.settings.base_url:
            raise AirflowFailException(
                f"manager_conn_id {self.manager_conn_id!r} connects to {manager.settings.base_url}, not "
                f"{hook.settings.base_url}; the approving account must be on the same system"
            )
        if manager.settings.username == hook.settings.username:
            raise AirflowFailException(
                f"manager_conn_id {self.manager_conn_id!r} logs in as the same account as "
                f"{self.preservica_conn_id!r}; Preservica needs a second account, with the manager role, to approve"
            )
        runner = DeletionRunner(
            hook,
            manager,
            self.registry,
            self.job_batch(context),
            self.series(context),
            operator_comment=self.operator_comment,
            supervisor_comment=self.supervisor_comment or f"Approved in Airflow by {approver}",
            poll_interval=self.poll_interval,
            timeout=self.timeout,
        )
        return runner, manifest, approver

    @task_errors
    def execute(self, context: Any) -> dict[str, Any]:
        runner, manifest, approver = self._runner(context)
        try:
            if not self.deferrable:
                return self._result(runner.run(manifest), manifest, approver)
            report = runner.submit(manifest)
        except ManifestChangedError as exc:
            raise AirflowFailException(str(exc)) from None  # a retry would find the same: a person must look
        state = {"report": _report_json(report), "approved": [], "done": [], "end_time": time.time() + self.timeout}
        return self._step(context, runner, manifest, approver, state, runner.look(report.progress_tokens.values()))

    @task_errors
    def execute_complete(self, context: Any, event: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        event = self.resumed(context, event)  # else the requests stay recorded: a retry takes them over
        runner, manifest, approver = self._runner(context)
        return self._step(context, runner, manifest, approver, dict(event["carry"]), dict(event["results"]))

    def _step(
        self,
        context: Any,
        runner: DeletionRunner,
        manifest: dict[str, Any],
        approver: str,
        state: dict[str, Any],
        statuses: dict[str, list[Any]],
    ) -> dict[str, Any]:
        """Approve, check and note (``runner.step``); report when every deletion finished, else defer again.

        ``state`` is JSON (it travels with the deferral): the report so far, the tokens approved and done."""
        report = DeletionReport(**state["report"])
        progress = DeferredState(list(state["approved"]), list(state["done"]))
        running = runner.step(report, statuses, progress)
        approved, done = progress.approved, progress.done
        if not running:
            return self._result(runner.conclude(manifest, report), manifest, approver)
        if time.time() >= state["end_time"]:
            raise PreservicaError(
                f"{len(running)} Preservica deletion(s) still running after {self.timeout:.0f} s (first progress "
                f"token {running[0]}); a retry takes them over without asking again"
            )
        self.defer_tokens(
            running,
            end_time=state["end_time"],
            stop_at_pending=[t for t in running if t not in approved],
            carry={"report": state["report"], "approved": approved, "done": done, "end_time": state["end_time"]},
        )
        raise AssertionError("defer() returns only by raising")  # pragma: no cover

    def _result(self, report: DeletionReport, manifest: dict[str, Any], approver: str) -> dict[str, Any]:
        result = {
            "deleted": [{k: t[k] for k in ("ref", "type", "title")} for t in report.deleted],
            "folders": manifest["folders"],
            "assets": manifest["assets"],
            "bytes": manifest["bytes"],
            "approved_by": approver,
            "requested": report.requested,
            "adopted": report.adopted,
            "progress_tokens": report.progress_tokens,
        }
        self.log.info(
            "Deleted %s (%d folder(s), %d asset(s), %s bytes), approved by %s",
            ", ".join(f"{t['ref']} {t['title']!r}" for t in result["deleted"]),
            result["folders"],
            result["assets"],
            f"{result['bytes']:,}",
            approver,
        )
        return result


def _report_json(report: DeletionReport) -> dict[str, Any]:
    return {"requested": report.requested, "adopted": report.adopted, "progress_tokens": report.progress_tokens}
