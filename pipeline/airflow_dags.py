"""The Airflow adapter: one DAG per job spec. The only module of the package importing Airflow.

Each task calls one function of the package. Module level imports neither pandas nor sklearn
and opens no connection, so DAG files parse fast; task bodies import what they need.
"""

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException
from airflow.timetables.trigger import CronTriggerTimetable

from pipeline.config import jobs_dir, normalize_url
from pipeline.errors import ConfigError, PipelineError
from pipeline.spec import JobSpec, load_spec, spec_paths

log = logging.getLogger(__name__)

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def warehouse_url() -> str:
    """`DATABASE_URL`, else the Airflow connection `warehouse` (env, secrets backend or DB)."""
    import os

    if os.environ.get("DATABASE_URL"):
        return normalize_url(os.environ["DATABASE_URL"])
    from airflow.sdk import Connection

    try:
        return normalize_url(Connection.get("warehouse").get_uri())
    except Exception as exc:  # Airflow raises its own not-found type
        raise ConfigError(
            "no warehouse: set DATABASE_URL or create the Airflow connection 'warehouse'"
        ) from exc


def run_stage(job: str, fn, *args, **kwargs):
    """Call one pipeline function; predictable errors fail the task at once and mark the run."""
    context = get_current_context()
    run_id = context["run_id"]
    ti = context["ti"]
    try:
        result = fn(*args, **kwargs)
    except PipelineError as exc:
        final = not isinstance(exc, ConfigError) or ti.try_number > ti.max_tries
        if final:
            record_failure(job, run_id, f"{ti.task_id}: {exc}")
        if isinstance(exc, ConfigError):
            raise
        raise AirflowFailException(str(exc)) from None
    except Exception as exc:
        if ti.try_number > ti.max_tries:
            record_failure(job, run_id, f"{ti.task_id}: {type(exc).__name__}: {exc}")
        raise
    return json.loads(json.dumps(result, default=str))  # plain JSON for XCom


def record_failure(job: str, run_id: str, error: str) -> None:
    from pipeline.runs import mark_failed

    try:
        mark_failed(warehouse_url(), job, run_id, error)
    except PipelineError:
        log.exception("could not record the failure of run %s", run_id)


def doc_for(spec: JobSpec, path: Path) -> str:
    return f"""### Scoring job `{spec.name}`

{spec.description}

Nightly: snapshot `{spec.source.table}` as of the run's cut-off, validate it with
`expectations/{spec.name}/`, retrain a `{spec.model.estimator}` {spec.task} pipeline
and gate it against the champion on `{spec.primary_metric}`, score every row and publish
to `scoring.{spec.latest_view}`, then measure drift against the champion's training data.

- Spec: `{path.name}`; key `{spec.source.key}`, timestamp `{spec.source.timestamp}`,
  target `{spec.target}`; features: {", ".join(spec.features.all)}.
- Trigger parameters: `as_of` (ISO-8601 cut-off; empty = the logical date),
  `force_promote` (promote the candidate even if the gate says no; recorded),
  `retrain` (auto = the spec's policy, always, never).
"""


def build_dag(spec: JobSpec, path: Path):
    """The DAG for one job spec."""
    spec_file = str(path)
    job = spec.name

    @dag(
        dag_id=job,
        description=spec.description or f"Nightly scoring of {spec.source.table}",
        schedule=CronTriggerTimetable(spec.schedule.cron, timezone=spec.schedule.timezone),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=sorted({"scoring", *spec.tags}),
        doc_md=doc_for(spec, path),
        default_args={
            "owner": spec.owner,
            "retries": spec.retries,
            "retry_delay": timedelta(seconds=30),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=10),
        },
        params={
            "as_of": Param(
                None,
                type=["null", "string"],
                title="Cut-off (as_of)",
                description="ISO-8601 timestamp, e.g. 2026-11-01T02:00:00Z. Rows with "
                f"{spec.source.timestamp} before it are used. Empty: the run's logical date.",
            ),
            "force_promote": Param(
                False,
                type="boolean",
                title="Force promote",
                description="Promote the new candidate even if it does not beat the champion.",
            ),
            "retrain": Param(
                "auto",
                type="string",
                enum=["auto", "always", "never"],
                title="Retrain",
                description="auto: follow the spec's retrain policy.",
            ),
        },
    )
    def scoring_dag():
        @task
        def start_run() -> dict:
            from pipeline import runs

            context = get_current_context()
            dag_run = context["dag_run"]
            as_of = runs.resolve_as_of(
                context["params"].get("as_of"), dag_run.logical_date, dag_run.run_after
            )
            return run_stage(
                job,
                runs.start_run,
                warehouse_url(),
                load_spec(spec_file),
                dag_run.run_id,
                dag_run.logical_date,
                as_of,
            )

        @task
        def snapshot(run: dict, kind: str) -> dict:
            from pipeline.runs import parse_timestamp
            from pipeline.snapshot import take_snapshot

            return run_stage(
                job,
                take_snapshot,
                load_spec(spec_file),
                kind,
                parse_timestamp(run["as_of"]),
                warehouse_url(),
            )

        @task
        def validate(manifest: dict) -> dict:
            from pipeline.validate import validate_snapshot

            run_id = get_current_context()["run_id"]
            return run_stage(
                job, validate_snapshot, warehouse_url(), load_spec(spec_file), manifest, run_id
            )

        @task
        def train(run: dict, manifest: dict, training_check: dict, scoring_check: dict) -> dict:
            from pipeline.candidate import train_candidate
            from pipeline.runs import parse_timestamp, retrain_decision

            context = get_current_context()
            spec_now = load_spec(spec_file)
            due, reason = run_stage(
                job,
                retrain_decision,
                warehouse_url(),
                spec_now,
                parse_timestamp(run["as_of"]),
                context["params"].get("retrain", "auto"),
            )
            log.info("retrain: %s (%s)", due, reason)
            if not due:
                return {"skipped": True, "reason": reason}
            return run_stage(job, train_candidate, spec_now, manifest, run["run_id"])

        @task
        def register(candidate: dict) -> dict:
            from pipeline.candidate import gate, serving_model

            context = get_current_context()
            spec_now = load_spec(spec_file)
            if candidate.get("skipped"):
                return run_stage(job, serving_model, warehouse_url(), spec_now)
            return run_stage(
                job,
                gate,
                warehouse_url(),
                spec_now,
                candidate,
                context["run_id"],
                bool(context["params"].get("force_promote")),
            )

        @task
        def plan(manifest: dict) -> list[dict]:
            from pipeline.score import plan_partitions

            spec_now = load_spec(spec_file)
            return run_stage(
                job, plan_partitions, manifest, spec_now.source.key, spec_now.scoring.partitions
            )

        @task(map_index_template="{{ partition_label }}")
        def score(partition: dict, manifest: dict, model: dict) -> dict:
            from pipeline.score import score_partition

            context = get_current_context()
            context["partition_label"] = f"keys {partition['key_min']}..{partition['key_max']}"
            run_id = context["run_id"]
            return run_stage(
                job, score_partition, load_spec(spec_file), manifest, model, partition, run_id
            )

        @task
        def publish(
            run: dict,
            training: dict,
            scoring: dict,
            checks: list,
            candidate: dict,
            model: dict,
            parts: list,
        ) -> dict:
            from pipeline.publish import publish_run

            parts = [parts[i] for i in range(len(parts))]  # no read past the end
            timings = {
                "snapshot_training": training["seconds"],
                "snapshot_scoring": scoring["seconds"],
                "validate": sum(c["seconds"] for c in checks),
                "train": candidate.get("seconds", 0.0),
                "score": max((p["seconds"] for p in parts), default=0.0),
            }
            lineage = {
                "model_version": model["version"],
                "training_snapshot_sha256": None
                if candidate.get("skipped")
                else training["sha256"],
                "scoring_snapshot_sha256": scoring["sha256"],
                "validation": [
                    {k: c[k] for k in ("suite", "success", "warnings_failed", "result_uri")}
                    for c in checks
                ],
                "timings": timings,
            }
            return run_stage(
                job, publish_run, warehouse_url(), load_spec(spec_file), run, parts, lineage
            )

        @task
        def monitor(scoring: dict, model: dict, published: dict) -> dict:
            from pipeline.drift import measure_drift

            run_id = get_current_context()["run_id"]
            return run_stage(
                job,
                measure_drift,
                warehouse_url(),
                load_spec(spec_file),
                scoring,
                model["version"],
                run_id,
            )

        run = start_run()
        training = snapshot.override(task_id="snapshot_training")(run, "training")
        scoring = snapshot.override(task_id="snapshot_scoring")(run, "scoring")
        training_check = validate.override(task_id="validate_training")(training)
        scoring_check = validate.override(task_id="validate_scoring")(scoring)
        candidate = train(run, training, training_check, scoring_check)
        model = register(candidate)
        partitions = plan(scoring)
        scoring_check >> partitions
        parts = score.partial(manifest=scoring, model=model).expand(partition=partitions)
        published = publish(
            run, training, scoring, [training_check, scoring_check], candidate, model, parts
        )
        monitor(scoring, model, published)

    return scoring_dag()


def build_dags(directory: Path | None = None) -> dict:
    """DAG id -> DAG for every valid spec; a broken spec is logged and skipped, not fatal."""
    dags = {}
    for path in spec_paths(directory or jobs_dir()):
        try:
            spec = load_spec(path)
        except PipelineError as exc:
            log.error("skipping job spec: %s", exc)
            continue
        dags[spec.name] = build_dag(spec, path)
    return dags


def run_once(job: str, logical_date: datetime, conf: dict) -> str:
    """Run one job's DAG once, in this process, through Airflow (`dag.test`); returns its state."""
    import os

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise PipelineError(f"DAG files failed to import: {bag.import_errors}")
    if job not in bag.dags:
        raise PipelineError(f"no DAG named {job!r}; DAGs found: {sorted(bag.dags)}")
    dag_run = bag.dags[job].test(logical_date=logical_date, run_conf=conf)
    return str(dag_run.state)
