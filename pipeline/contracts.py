"""What the stages hand each other: typed records that travel as plain JSON (XCom, files).

Each record is a frozen dataclass. `to_json()` gives the dict Airflow stores as an XCom;
`from_json()` rebuilds the record from it (keys it does not know are ignored, so a manifest
written by a newer version still reads). `plain_json` is the one JSON sanitiser of the package.
"""

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime
from functools import cached_property
from typing import Any, Self

from pipeline.spec import JobSpec, spec_from_record


def plain_json(value: Any) -> Any:
    """`value` as plain JSON types: records and numpy scalars unwrapped, datetimes as ISO-8601,
    NaN and infinities as strings (Postgres' jsonb refuses them), anything else as `str`."""
    if isinstance(value, Record):
        value = value.to_json()
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain_json(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else json.dumps(value)  # "NaN", "Infinity"...
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return plain_json(value.item())
    return str(value)


def dumps(value: Any, **options) -> str:
    """`json.dumps` of `plain_json(value)`."""
    return json.dumps(plain_json(value), **options)


def content_sha256(value: Any) -> str:
    """sha256 of a JSON value in canonical form (sorted keys), so equal content hashes equal."""
    return hashlib.sha256(dumps(value, sort_keys=True).encode()).hexdigest()


class Record:
    """Base of every stage record: to and from plain JSON."""

    def to_json(self) -> dict:
        return plain_json(asdict(self))  # type: ignore[call-overload]  # subclasses are dataclasses

    @classmethod
    def from_json(cls, data: "dict | Self") -> Self:
        if isinstance(data, cls):
            return data
        if isinstance(data, Record):
            raise TypeError(f"not a {cls.__name__}: {type(data).__name__}")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]  # dataclass subclasses
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Trigger(Record):
    """What starts a run: the DAG run's identity and the trigger form's parameters."""

    job: str
    spec_path: str
    run_id: str
    logical_date: str | None
    run_after: str
    as_of: str | None = None
    force_promote: bool = False
    retrain: str = "auto"
    full: bool = False  # score the whole table even in incremental mode


@dataclass(frozen=True)
class Run(Record):
    """A started run: its cut-off and the spec and suites frozen for every later stage."""

    job: str
    run_id: str
    logical_date: str | None
    as_of: str
    spec_path: str
    spec: dict
    spec_sha256: str
    suites: dict
    suites_sha256: str
    force_promote: bool = False
    retrain: str = "auto"
    scope: dict = field(default_factory=dict)  # pipeline.logic.scope.Scope, as JSON

    @property
    def incremental(self) -> bool:
        """Whether the run scores only what changed since the previous published run."""
        return self.scope.get("mode") == "incremental"


@dataclass(frozen=True)
class SnapshotRef(Record):
    """Where a snapshot's Parquet file is and the sha256 it must have."""

    uri: str
    sha256: str


@dataclass(frozen=True)
class Manifest(Record):
    """A snapshot as written: its rows, schema, exact query and content hash."""

    job: str
    kind: str
    source_table: str
    as_of: str
    query: str
    row_count: int
    row_groups: int
    schema: list
    sha256: str
    uri: str
    code_version: str
    library_versions: dict
    future_rows: dict = field(default_factory=dict)
    seconds: float = 0.0
    snapshot_id: int | None = None  # its scoring.snapshots.id, once recorded (not in the file)
    change: dict | None = None  # an incremental run's scoring snapshot: pipeline.logic.scope
    original_sha256: str | None = None  # the sha256 it was written with, once erased from
    erasures: list = field(default_factory=list)  # each rewrite without erased rows

    @property
    def table_rows(self) -> int:
        """The rows of the whole table at the cut-off (a change snapshot holds only some)."""
        return self.change["table_rows"] if self.change else self.row_count

    def file_json(self) -> dict:
        """As written beside the data and in scoring.snapshots: without the row's id."""
        data = self.to_json()
        data.pop("snapshot_id", None)
        return data


@dataclass(frozen=True)
class Validation(Record):
    """One suite's verdict on one snapshot; the full GX result is at `result_uri`."""

    suite: str
    kind: str
    success: bool
    evaluated: int
    critical_failed: int
    warnings_failed: int
    failures: list
    result_uri: str
    docs_uri: str
    snapshot_sha256: str
    seconds: float = 0.0


@dataclass(frozen=True)
class RetrainDecision(Record):
    """Whether this run fits a candidate, and why."""

    due: bool
    reason: str


@dataclass(frozen=True)
class Candidate(Record):
    """A fitted pipeline in the run's folder, with its holdout metrics."""

    folder_uri: str
    artifact_sha256: str
    training_snapshot_sha256: str
    training_snapshot_uri: str
    params: dict
    metrics: dict
    seconds: float = 0.0
    training_snapshot_id: int | None = None  # scoring.snapshots.id of the data it was fitted on


@dataclass(frozen=True)
class Decision(Record):
    """What the gate did with a candidate."""

    version: int
    status: str
    reason: str
    forced: bool


@dataclass(frozen=True)
class ServingModel(Record):
    """The champion the run scores with; `decision` is set when this run trained a candidate."""

    version: int
    artifact_uri: str
    artifact_sha256: str
    training_snapshot_sha256: str
    decision: dict | None = None
    train_seconds: float = 0.0
    training_snapshot_id: int | None = None  # None for models registered before snapshot ids
    shadow: dict | None = None  # a challenger in shadow: {version, artifact_uri, artifact_sha256}

    @property
    def trained_now(self) -> bool:
        return self.decision is not None


@dataclass(frozen=True)
class Partition(Record):
    """A contiguous key range of the scoring snapshot: row groups [first, last)."""

    index: int
    row_groups: list
    rows: int
    key_min: Any = None
    key_max: Any = None

    @property
    def label(self) -> str:
        return f"keys {self.key_min}..{self.key_max}"


@dataclass(frozen=True)
class ScoredPartition(Record):
    """One partition's predictions, written as Parquet at `uri`."""

    index: int
    rows: int
    uri: str
    seconds: float = 0.0
    predict_seconds: float = 0.0
    shadow_uri: str | None = None  # the challenger's predictions of the same rows, in shadow


@dataclass(frozen=True)
class PublishRecord(Record):
    """What made a run's predictions, written on its scoring_runs row as it is published."""

    model_version: int
    scoring_snapshot_sha256: str
    training_snapshot_sha256: str | None = None  # set when this run trained the model
    validation: list = field(default_factory=list)
    scoring_snapshot_id: int | None = None  # the run's own snapshots (scoring.snapshots.id)
    training_snapshot_id: int | None = None


@dataclass(frozen=True)
class Published(Record):
    """A run's predictions, visible to analysts."""

    rows: int
    published_at: str
    seconds: float = 0.0


@dataclass(frozen=True)
class DriftSummary(Record):
    """What monitoring found: features compared, those in alert or to watch (`(score)` is the
    score's own drift), realised-performance alerts, and the policy applied."""

    features: int
    alerts: list
    watch: list = field(default_factory=list)
    performance_alerts: list = field(default_factory=list)
    action: str = "record"
    seconds: float = 0.0
    population: str | None = None  # which rows decided the drift alerts: new or all
    population_rows: int | None = None


@dataclass
class Context:
    """What every stage is called with: the warehouse, the trigger, and (for every stage after
    `start_run`) the started run."""

    url: str
    trigger: Trigger
    started: Run | None = None

    @property
    def run(self) -> Run:
        if self.started is None:
            raise RuntimeError("the run has not started yet: only start_run runs before it")
        return self.started

    @cached_property
    def spec(self) -> JobSpec:
        """The run's frozen spec (never the file as it is now)."""
        return spec_from_record(self.run.spec, self.run.spec_path)
