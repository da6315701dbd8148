"""The approval DAG of a job whose spec sets `governance.approval` (`<job>_approval`), and the
nightly DAG's task that asks for it.

A nightly run whose gate left its candidate `awaiting_approval` ends as usual, scored and
published with the champion; its `request_approval` task (after `register`, beside the
scoring path) updates the Asset `scoring.<job>_approval`, which starts the approval DAG:
`evidence` waits for the requesting run to end and records what is shown, `approve` waits on
Airflow's Required Actions page for one of the spec's approvers (Approve or Reject, with a
reason; the spec's timeout keeps the champion), `record` stores the answer on the model version
and promotes it, and `rescore` runs the job again at once when the spec says so.
"""

import logging
from datetime import timedelta

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowSkipException

from pipeline.config import warehouse_url
from pipeline.logic.approval import APPROVE, REJECT
from pipeline.spec import JobSpec

log = logging.getLogger(__name__)

POKE_S = 20  # how often `evidence` looks whether the requesting run has ended
RUN_WAIT = timedelta(hours=12)  # the longest it waits for that


def approval_asset(job: str) -> Asset:
    """What a nightly run updates when its candidate waits: the approval DAG's schedule."""
    return Asset(name=f"scoring.{job}_approval", group="approvals")


def approval_dag_id(job: str) -> str:
    return f"{job}_approval"


def url() -> str:
    from pipeline.orchestration.dags import airflow_warehouse  # its module imports this one

    return warehouse_url(airflow_warehouse)


@task(trigger_rule="all_done")
def request_approval(job: str) -> int:
    """Ask for approval when this run made a version wait for it (its candidate at the gate, or
    a challenger it judged after its shadow runs); else skip. Runs when `register` failed too:
    a job's first model has no champion to score with."""
    from pipeline.warehouse.models import awaiting_approval  # psycopg2: not at DAG parse

    run_id = get_current_context()["dag_run"].run_id
    waiting = awaiting_approval(url(), job)
    candidate = next(
        (v for v in waiting if (v.approval or {}).get("requested_by_run") == run_id), None
    )
    if candidate is None:
        raise AirflowSkipException("no version awaits approval because of this run")
    log.info("job %s: v%d awaits approval: %s", job, candidate.version, candidate.decision_reason)
    return candidate.version


@task.short_circuit
def rescores(due: bool) -> bool:
    """Whether the approval triggers a run now (`on_approve: rescore`)."""
    return bool(due)


def wire_request(job: str, register) -> None:
    """The nightly DAG's `request_approval` task, after `register`."""
    register >> request_approval.override(outlets=[approval_asset(job)])(job)


def build_approval_dag(spec: JobSpec, path: str):
    """The job's approval DAG: started by the Asset, or by Trigger (it finds what waits)."""
    approval = spec.governance.approval

    @task.sensor(poke_interval=POKE_S, timeout=RUN_WAIT.total_seconds(), mode="reschedule")
    def evidence() -> PokeReturnValue:
        """Once the requesting run has ended: record the request and the evidence shown."""
        from pipeline.spec import load_spec
        from pipeline.stages import approve
        from pipeline.warehouse.runs import fetch_run

        try:
            waiting = approve.waiting_version(url(), spec.name)
        except Exception as exc:
            raise AirflowSkipException(str(exc)) from None
        run = fetch_run(url(), spec.name, waiting.run_id)
        if run is not None and run.status == "running":
            log.info("waiting for run %s to end before asking", waiting.run_id)
            return PokeReturnValue(is_done=False)
        asked = approve.request(url(), load_spec(path), waiting.version)
        return PokeReturnValue(is_done=True, xcom_value=asked)

    @task(trigger_rule="all_done")
    def record() -> bool:
        """Store the answer (none: timed out) on the version; True when a rescore is due."""
        from pipeline.spec import load_spec
        from pipeline.stages import approve

        ti = get_current_context()["ti"]
        asked = ti.xcom_pull(task_ids="evidence")
        if not asked:
            raise AirflowSkipException("nothing was asked")
        answer = ti.xcom_pull(task_ids="approve")
        settled = approve.settle(url(), load_spec(path), asked["version"], answer)
        return settled["rescore"]

    @dag(
        dag_id=approval_dag_id(spec.name),
        description=f"Approval of {spec.name}'s candidate models (governance.approval)",
        schedule=[approval_asset(spec.name)],
        catchup=False,
        max_active_runs=1,
        tags=sorted({"scoring", "approval", *spec.tags}),
        doc_md=APPROVAL_DOC.format(job=spec.name, approvers=", ".join(approval.approvers)),
        default_args={"owner": spec.owner, "retries": 0},
    )
    def approval_dag():
        asked = evidence()
        answer = HITLOperator(
            task_id="approve",
            subject="{{ ti.xcom_pull(task_ids='evidence')['subject'] }}",
            body="{{ ti.xcom_pull(task_ids='evidence')['body'] }}",
            options=[APPROVE, REJECT],
            params={
                # required in the form (its type is not nullable); the default is there
                # because Airflow validates a task's params before it runs. `record` refuses
                # an approval without a reason.
                "reason": Param(
                    "",
                    type="string",
                    title="Reason",
                    description="Why you approve or reject this model (required; recorded "
                    "with your name)",
                )
            },
            assigned_users=[{"id": user, "name": user} for user in approval.approvers],
            response_timeout=timedelta(hours=approval.timeout_hours),
        )
        settled = record()
        rescore = rescores(settled)  # type: ignore[arg-type]  # an XComArg at parse time
        asked >> answer >> settled
        rescore >> TriggerDagRunOperator(
            task_id="rescore", trigger_dag_id=spec.name, conf={"retrain": "never"}
        )

    return approval_dag()


APPROVAL_DOC = """### Approval of `{job}`'s models

A nightly run whose candidate the gate would promote, when the spec's `governance.approval`
asks for a person, scores with the champion and starts this DAG. `approve` waits on the
**Required Actions** page for one of: {approvers}. Approve or Reject with a reason; both are
recorded on the model version (`python -m pipeline audit {job}`). No answer before the
timeout keeps the champion. Trigger it by hand to ask about a version registered by a run
outside Airflow (`python -m pipeline approvals {job}` lists what waits).
"""
