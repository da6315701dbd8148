"""The one definition of a run: its stages in order, and what each takes from the others.

The Airflow DAG (`pipeline.orchestration.dags`), the tests and the benchmark all run `STAGES`,
through `execute`, so none of them can drift from what production runs. A stage is a
function `fn(ctx, *inputs, **options)` of `pipeline.stages`, named by its import path so
this module imports nothing heavy (DAG files import it when they are parsed).

Results travel as plain JSON between stages, as Airflow's XComs carry them; `execute`
turns them back into the stage records of `pipeline.contracts` before calling a stage.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from pipeline.contracts import (
    Candidate,
    Context,
    DriftSummary,
    Manifest,
    Partition,
    Published,
    Record,
    RetrainDecision,
    Run,
    ScoredPartition,
    ServingModel,
    Trigger,
    Validation,
)
from pipeline.errors import StageSkipped
from pipeline.logic.scope import INCREMENTAL_SKIPS

log = logging.getLogger(__name__)

FIRST = "start_run"


@dataclass(frozen=True)
class Stage:
    """One step of a run; it also receives the started run (the first stage's result)."""

    name: str
    target: str  # "module:function" in pipeline.stages
    returns: type[Record]
    inputs: tuple[str, ...] = ()  # stages whose results are its arguments, in this order
    options: dict = field(default_factory=dict)  # fixed keyword arguments
    many: bool = False  # returns a list of `returns`
    expand: str | None = None  # runs once per item of that stage's list, in parallel
    when: str | None = None  # runs only if that input's result is due (a RetrainDecision)
    refreshes_latest: bool = False  # its success means new rows in scoring.<job>_latest
    full_only: bool = False  # an incremental run skips it (it keeps its champion: no training)

    def function(self) -> Callable:
        module, _, name = self.target.partition(":")
        return getattr(import_module(module), name)

    @property
    def may_skip(self) -> bool:
        """Whether the stage can be skipped: downstream stages then get None."""
        return self.when is not None or self.full_only

    @property
    def returns_list(self) -> bool:
        return self.many or self.expand is not None


STAGES: tuple[Stage, ...] = (
    Stage(FIRST, "pipeline.stages.run:start_run", Run),
    Stage(
        "snapshot_training",
        "pipeline.stages.snapshot:snapshot",
        Manifest,
        options={"kind": "training"},
        full_only=True,
    ),
    Stage(
        "snapshot_scoring",
        "pipeline.stages.snapshot:snapshot",
        Manifest,
        options={"kind": "scoring"},
    ),
    Stage(
        "validate_training",
        "pipeline.stages.validate:validate",
        Validation,
        ("snapshot_training",),
        full_only=True,
    ),
    Stage(
        "validate_scoring",
        "pipeline.stages.validate:validate",
        Validation,
        ("snapshot_scoring",),
    ),
    Stage(
        "decide_retrain",
        "pipeline.stages.run:decide_retrain",
        RetrainDecision,
        ("validate_training", "validate_scoring"),
    ),
    Stage(
        "train",
        "pipeline.stages.train:train",
        Candidate,
        ("decide_retrain", "snapshot_training"),
        when="decide_retrain",
    ),
    Stage("register", "pipeline.stages.train:register", ServingModel, ("train",)),
    Stage(
        "plan",
        "pipeline.stages.score:plan",
        Partition,
        ("snapshot_scoring", "validate_scoring"),
        many=True,
    ),
    Stage(
        "score",
        "pipeline.stages.score:score",
        ScoredPartition,
        ("snapshot_scoring", "register"),
        expand="plan",
    ),
    Stage(
        "monitor",
        "pipeline.stages.monitor:monitor",
        DriftSummary,
        ("snapshot_scoring", "register", "score"),
    ),
    Stage(
        "publish",
        "pipeline.stages.publish:publish",
        Published,
        (
            "snapshot_training",
            "snapshot_scoring",
            "validate_training",
            "validate_scoring",
            "register",
            "score",
            "monitor",
        ),
        refreshes_latest=True,
    ),
)
BY_NAME = {stage.name: stage for stage in STAGES}


def decode(stage: Stage, value: Any) -> Any:
    """A stage's JSON result as its record (a list of them for list stages; None if skipped)."""
    if value is None:
        return None
    if stage.returns_list:
        # by index: Airflow's lazy sequence of mapped results, iterated, asks for one item past
        # its end and logs that request's 404 as an error
        return [stage.returns.from_json(value[i]) for i in range(len(value))]
    return stage.returns.from_json(value)


def encode(value: Any) -> Any:
    """A stage's result as plain JSON."""
    if isinstance(value, list):
        return [v.to_json() for v in value]
    return value.to_json()


def execute(stage: Stage, url: str, trigger: Trigger, inputs: dict, item: Any = None) -> Any:
    """Call one stage with JSON inputs keyed by stage name (as XComs carry them), and return its
    result as JSON. `item` is this call's element of the `expand` stage's list.

    Raises StageSkipped when the stage has nothing to do this run.
    """
    # imported when a stage runs, never when a DAG file is parsed: these load psycopg2, and
    # the stage modules pandas, pyarrow, scikit-learn and Great Expectations
    from pipeline.warehouse.runs import heartbeat, record_timing

    started = time.perf_counter()
    if stage.name == FIRST:
        result = encode(stage.function()(Context(url=url, trigger=trigger)))
        record_timing(url, trigger.job, trigger.run_id, stage.name, time.perf_counter() - started)
        return result
    run = Run.from_json(inputs[FIRST])
    ctx = Context(url=url, trigger=trigger, started=run)
    args = [decode(BY_NAME[name], inputs[name]) for name in stage.inputs]
    if stage.full_only and run.incremental:
        raise StageSkipped(f"{stage.name} skipped: {INCREMENTAL_SKIPS}")
    if stage.when:  # decided before the stage's module (and its libraries) is imported
        decision = args[stage.inputs.index(stage.when)]
        if not decision.due:
            raise StageSkipped(f"{stage.name} skipped: {decision.reason}")
    if stage.expand:
        args.append(BY_NAME[stage.expand].returns.from_json(item))
    with heartbeat(url, run.job, run.run_id):
        result = encode(stage.function()(ctx, *args, **stage.options))
    seconds = time.perf_counter() - started
    record_timing(url, run.job, run.run_id, stage.name, seconds)
    log.info("%s of run %s done in %.1f s", stage.name, run.run_id, seconds)
    return result


def item_label(stage: Stage, item: Any) -> str | None:
    """How a person tells an expanded stage's calls apart (a partition's key range)."""
    if stage.expand is None:
        return None
    return getattr(BY_NAME[stage.expand].returns.from_json(item), "label", None)


def inputs_of(stage: Stage, results: dict) -> dict:
    """The results a stage reads: the started run and its declared inputs. `results` holds
    the results themselves (`run_stages`) or, in the DAG, how each task reads one at run time
    (a pull of that stage's XCom by task id, which draws no edge: see `upstream_of`)."""
    names = () if stage.name == FIRST else (FIRST, *stage.inputs)
    return {name: results[name] for name in names}


def reads(stage: Stage) -> set[str]:
    """Every stage whose result this one needs: the started run, its inputs, its `expand`."""
    if stage.name == FIRST:
        return set()
    return {FIRST, *stage.inputs, *([stage.expand] if stage.expand else [])}


def before(stage: Stage) -> set[str]:
    """Every stage that must have ended before this one starts (what it reads, transitively)."""
    found: set[str] = set()
    for name in reads(stage):
        found |= {name} | before(BY_NAME[name])
    return found


def upstream_of(stage: Stage) -> tuple[str, ...]:
    """The stages this one waits for directly, in `STAGES` order: those it reads less those
    another of them already comes after (a transitive reduction). The DAG's edges are these
    only, so its Graph shows the stage order (start_run, snapshots, validations, ...) and not
    an edge from start_run to every task nor seven into publish."""
    direct = reads(stage)
    implied = set().union(*(before(BY_NAME[name]) for name in direct))
    return tuple(s.name for s in STAGES if s.name in direct - implied)


def run_here(stage: Stage, url: str, trigger: Trigger, inputs: dict, items: list | None):
    """Run a stage in this process: once, or once per item for an expanded stage."""
    if items is None:
        return execute(stage, url, trigger, inputs)
    return [execute(stage, url, trigger, inputs, item) for item in items]


def run_stages(
    url: str,
    trigger: Trigger,
    given: dict | None = None,
    until: str | None = None,
    runner: Callable = run_here,
) -> dict[str, Any]:
    """Run `STAGES` in order without Airflow; returns every stage's JSON result by name.

    `given` holds results already known (those stages are not run again); `until` stops after
    that stage; `runner(stage, url, trigger, inputs, items)` runs one stage (the benchmark
    passes one that uses worker processes). A skipped stage's result is None. A failing stage
    marks the run failed, as the Airflow adapter does, and its error propagates.
    """
    from pipeline.stages.run import mark_failed  # heavy: see `execute`

    results = dict(given or {})
    for stage in STAGES:
        if stage.name not in results:
            items = results[stage.expand] if stage.expand else None
            try:
                results[stage.name] = runner(stage, url, trigger, inputs_of(stage, results), items)
            except StageSkipped:
                results[stage.name] = None
            except Exception as exc:
                when = trigger.logical_date or trigger.run_after
                mark_failed(url, trigger.job, trigger.run_id, f"{stage.name}: {exc}", when)
                raise
        if stage.name == until:
            break
    return results
