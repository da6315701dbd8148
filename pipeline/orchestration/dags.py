"""The Airflow adapter: one DAG per job spec, wired from `pipeline.flow.STAGES`.

The only module of the package importing Airflow. It holds DAG settings, the trigger form and
the wiring; every task body is one call of `flow.execute`. Module level imports neither pandas
nor sklearn and opens no connection, so DAG files parse fast.
"""

import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import Asset, Connection, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.timetables.trigger import CronTriggerTimetable

from pipeline import flow
from pipeline.config import jobs_dir, warehouse_url
from pipeline.contracts import Trigger
from pipeline.errors import ConfigError, PipelineError, StageSkipped
from pipeline.faults import explain_permanent
from pipeline.orchestration.approvals import approval_dag_id, build_approval_dag, wire_request
from pipeline.orchestration.notifier import FailureNotifier
from pipeline.redaction import install_redaction, redact
from pipeline.spec import JobSpec, scan_specs

log = logging.getLogger(__name__)

RECORD_WAITS = (2, 4, 8, 16, 30)  # seconds between tries to record a failure


def airflow_warehouse() -> str:
    """The Airflow connection `warehouse` (env, secrets backend or metadata DB) as a URL."""
    try:
        return Connection.get("warehouse").get_uri()
    except Exception as exc:  # Airflow raises its own not-found type
        raise ConfigError(
            "no warehouse: set DATABASE_URL or create the Airflow connection 'warehouse'"
        ) from exc


def trigger_of(context, job: str, spec_path: str) -> Trigger:
    """The run's identity and trigger-form parameters, from Airflow's task context."""
    dag_run, params = context["dag_run"], context["params"]
    return Trigger(
        job=job,
        spec_path=spec_path,
        run_id=dag_run.run_id,
        logical_date=dag_run.logical_date.isoformat() if dag_run.logical_date else None,
        run_after=dag_run.run_after.isoformat(),
        as_of=params.get("as_of"),
        force_promote=bool(params.get("force_promote")),
        retrain=params.get("retrain") or "auto",
        full=bool(params.get("full")),
    )


# the return value is the stage's record as JSON (a run's holds its whole spec and suites):
# kept out of the task log, where each stage writes one line of what it did instead
@task(multiple_outputs=False, show_return_value_in_logs=False)
def stage_task(stage: str, job: str, spec_path: str, inputs: dict, item=None):
    """Run one stage of `pipeline.flow`; predictable errors fail at once and mark the run."""
    install_redaction()
    context = get_current_context()
    ti = context["ti"]
    step = flow.BY_NAME[stage]
    if step.expand:
        # read by map_index_template: the UI names each partition task by its key range
        context["item_label"] = flow.item_label(step, item) or str(ti.map_index)  # type: ignore[typeddict-unknown-key]
    try:
        url = warehouse_url(airflow_warehouse)
        result = flow.execute(step, url, trigger_of(context, job, spec_path), inputs, item)
    except StageSkipped as exc:
        log.info("%s", exc)
        # an explicit None for the tasks that read this one: without it their XCom read
        # answers 404, which Airflow's client logs as an error
        ti.xcom_push(key="return_value", value=None)
        raise AirflowSkipException(str(exc)) from None
    except PipelineError as exc:
        final = not isinstance(exc, ConfigError) or ti.try_number > ti.max_tries
        if final:
            record_failure(job, context["run_id"], f"{ti.task_id}: {exc}", trigger_time(context))
        if isinstance(exc, ConfigError):
            raise
        raise AirflowFailException(redact(str(exc))) from None
    except Exception as exc:
        permanent = explain_permanent(exc)  # no retry fixes rights, read-only storage, no table
        when = trigger_time(context)
        if permanent:
            record_failure(job, context["run_id"], f"{ti.task_id}: {permanent}", when)
            raise AirflowFailException(redact(permanent)) from None
        if ti.try_number > ti.max_tries:
            error = f"{ti.task_id}: {type(exc).__name__}: {exc}"
            record_failure(job, context["run_id"], error, when)
        raise
    from pipeline.orchestration.lineage import record_lineage  # pyarrow: not at DAG parse
    from pipeline.spec import load_spec

    record_lineage(stage, load_spec(spec_path), url, inputs, result)
    return result


def trigger_time(context) -> str:
    """The run's logical date (or when it was asked for): the as_of a failure is recorded at
    when the run failed before its cut-off was known."""
    dag_run = context["dag_run"]
    return (dag_run.logical_date or dag_run.run_after).isoformat()


def record_failure(job: str, run_id: str, error: str, when: str) -> None:
    """Mark the run failed with why (a run refused at its start gets a row too), and write its
    report. The warehouse may be restarting: try for about a minute; never raises."""
    from pipeline.stages.run import mark_failed  # heavy (pandas, pyarrow): not at DAG parse

    for wait in RECORD_WAITS:
        try:
            mark_failed(warehouse_url(airflow_warehouse), job, run_id, error, when)
            return
        except ConfigError as exc:  # cannot connect: the warehouse may be back in a moment
            log.warning("could not record the failure of run %s yet (%s)", run_id, exc)
            time.sleep(wait)
        except Exception:  # e.g. the login lacks rights on scoring.scoring_runs too
            log.exception("could not record the failure of run %s", run_id)
            return
    log.error("could not record the failure of run %s: the warehouse stayed out of reach", run_id)


def pulled(name: str) -> str:
    """How a task reads stage `name`'s result when it runs: a pull of that task's XCom by task
    id (a template, rendered as the object itself: the DAG renders templates natively). Unlike
    an XComArg argument it draws no edge. A mapped stage's result is the list of its tasks'."""
    if flow.BY_NAME[name].expand:
        return f"{{{{ ti.xcom_pull(task_ids=[{name!r}]) }}}}"
    return f"{{{{ ti.xcom_pull(task_ids={name!r}, map_indexes=None) }}}}"


def wire(stage: flow.Stage, job: str, spec_path: str, results: dict):
    """The task for one stage, after the tasks it waits for (`flow.upstream_of`: the stage
    order, not every stage it reads); it pulls the results it reads, the started run's too."""
    upstream = flow.upstream_of(stage)
    skippable = any(flow.BY_NAME[name].may_skip for name in upstream)
    op = stage_task.override(
        task_id=stage.name,
        trigger_rule="none_failed" if skippable else "all_success",
        map_index_template="{{ item_label }}" if stage.expand else None,
        outlets=[latest_asset(job)] if stage.refreshes_latest else [],
    )
    inputs = flow.inputs_of(stage, {name: pulled(name) for name in flow.BY_NAME})
    if stage.expand:
        task = op.partial(stage=stage.name, job=job, spec_path=spec_path, inputs=inputs).expand(
            item=results[stage.expand]
        )
    else:
        task = op(stage=stage.name, job=job, spec_path=spec_path, inputs=inputs)
    for name in upstream:
        results[name] >> task
    return task


def latest_asset(job: str) -> Asset:
    """The analysts' view as an Airflow Asset: other DAGs can be scheduled on fresh scores."""
    return Asset(name=f"scoring.{job}_latest", group="scoring")


def doc_for(spec: JobSpec, path: Path) -> str:
    return f"""### Scoring job `{spec.name}`

{spec.description}

Nightly: snapshot `{spec.source.table}` as of the run's cut-off, validate it with
`expectations/{spec.name}/`, retrain a `{spec.model.estimator}` {spec.task} pipeline
and gate it against the champion on `{spec.primary_metric}`, score every row and publish
to `scoring.{spec.latest_view}`, then measure drift against the champion's training data.
`train` shows as skipped on runs where the retrain policy says no; `register` then serves
the current champion.

- Spec: `{path.name}`; key `{spec.source.key}`, timestamp `{spec.source.timestamp}`,
  target `{spec.target}`; features: {", ".join(spec.features.all)}.
- First logical date: {spec.schedule.start} (`schedule.start`); Airflow never catches up
  on its own: backfill with `python -m pipeline backfill` or `airflow backfill create`.
- Publishing updates the Asset `scoring.{spec.latest_view}`: schedule other DAGs on it.
- Trigger parameters: `Cut-off (as_of)` (ISO-8601, UTC, not in the future): empty, the
  run's **Logical Date** is its cut-off (now, for a manual run); given, it is the cut-off
  whatever the Logical Date (which then only names the run). `force_promote` (promote the
  candidate even if the gate says no; recorded); `retrain` (auto = the spec's policy,
  always, never; cleared = auto); `full` (score the whole table even in incremental mode).
"""


def trigger_form(spec: JobSpec) -> dict:
    """The parameters a person sets when pressing Trigger.

    Airflow's form marks a field required (*) unless its type allows "null", and always draws
    a clear (X) on a drop-down: so every field here allows null, meaning its default (a
    cleared `retrain` is auto; `trigger_of` reads a missing value the same way), and none is
    starred. The form's own "Logical Date", above these, is the cut-off unless `as_of` is set.
    """
    return {
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Cut-off (as_of)",
            description=f"Rows with {spec.source.timestamp} before this date and time (UTC, "
            "not in the future) are snapshotted. Empty: the cut-off is the Logical Date above "
            "(now, unless you change it). Set: this is the cut-off, whatever the Logical Date.",
        ),
        "force_promote": Param(
            False,
            type=["boolean", "null"],
            title="Force promote",
            description="On: the new candidate becomes champion even if it does not beat the "
            "current one (recorded as forced). Off: the gate decides.",
        ),
        "retrain": Param(
            "auto",
            type=["string", "null"],
            enum=["auto", "always", "never", None],
            values_display={
                "auto": "auto: the job spec's retrain policy decides",
                "always": "always: fit a candidate and gate it against the champion",
                "never": "never: score with the current champion",
                None: "(cleared) auto",
            },
            title="Retrain",
            description=f"Whether this run fits a new candidate (the spec's policy: "
            f"{spec.retrain.policy}). Cleared (X) is auto.",
        ),
        "full": Param(
            False,
            type=["boolean", "null"],
            title="Full run",
            description="On: score the whole table. Off: the job's scoring.mode decides "
            f"({spec.scoring.mode}; incremental scores only the rows changed since the "
            "previous published run, when nothing else changed).",
        ),
    }


def build_dag(spec: JobSpec, path: Path):
    """The DAG for one job spec: settings from the spec, tasks from `flow.STAGES`."""

    default_args = {
        "owner": spec.owner,
        "retries": spec.retries,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    }
    if spec.alerts.targets("failure"):
        default_args["on_failure_callback"] = FailureNotifier(spec)  # after a task's last try

    @dag(
        dag_id=spec.name,
        description=spec.description or f"Nightly scoring of {spec.source.table}",
        schedule=CronTriggerTimetable(spec.schedule.cron, timezone=spec.schedule.timezone),
        start_date=datetime.combine(spec.schedule.start, datetime.min.time(), UTC),
        catchup=False,
        max_active_runs=1,
        tags=sorted({"scoring", *spec.tags}),
        doc_md=doc_for(spec, path),
        default_args=default_args,
        params=trigger_form(spec),
        render_template_as_native_obj=True,  # a task's `pulled` inputs are the records
    )
    def scoring_dag():
        results: dict = {}
        for stage in flow.STAGES:
            results[stage.name] = wire(stage, spec.name, str(path), results)
        if spec.governance.approval.when != "never":
            wire_request(spec.name, results["register"])

    return scoring_dag()


def build_dags(directory: Path | None = None) -> dict:
    """DAG id -> DAG for every valid spec. A spec that fails to load (a second file for a job
    name too) or to become a DAG, for whatever reason, is logged naming its file and skipped:
    one broken file never hides the other jobs (`python -m pipeline check` says what is wrong)."""
    specs, problems = scan_specs(directory or jobs_dir())
    for exc in problems.values():
        log.error("skipping job spec: %s", exc)
    dags = {}
    for spec in specs:
        try:
            dags[spec.name] = build_dag(spec, Path(spec.path))
            if spec.governance.approval.when != "never":
                dags[approval_dag_id(spec.name)] = build_approval_dag(spec, spec.path)
        except Exception as exc:  # any failure of one file must not take the others down
            log.error("skipping job spec %s: %s: %s", spec.path, type(exc).__name__, exc)
    return dags


def run_once(job: str, logical_date: datetime, conf: dict) -> str:
    """Run one job's DAG once, in this process, through Airflow (`dag.test`); returns its state."""
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise PipelineError(f"DAG files failed to import: {bag.import_errors}")
    if job not in bag.dags:
        raise PipelineError(f"no DAG named {job!r}; DAGs found: {sorted(bag.dags)}")
    dag_run = bag.dags[job].test(logical_date=logical_date, run_conf=conf)
    return str(dag_run.state)
