"""Job specs: one YAML file per scoring job, parsed into typed, validated models.

Imports only pydantic and yaml, so DAG files can load specs at parse time cheaply.
"""

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import SpecError
from pipeline.model import estimators

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
JOB_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

METRICS = {
    "classification": ("roc_auc", "log_loss", "accuracy"),
    "regression": ("rmse", "mae", "r2"),
}
LOWER_IS_BETTER = {"log_loss", "rmse", "mae"}


def check_identifier(value: str) -> str:
    """A lower-case SQL identifier: letters, digits and underscores."""
    if not IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a valid identifier (lower-case letters, digits, _; max 63 chars)"
        )
    return value


Identifier = Annotated[str, AfterValidator(check_identifier)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    """Where the rows come from."""

    table: str = Field(description="schema.table, e.g. demo.customers")
    key: Identifier = Field(description="unique key column; predictions are keyed by it")
    timestamp: Identifier = Field(description="a snapshot keeps rows with timestamp < as_of")

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) != 2:
            raise ValueError(f"{value!r} must be written as schema.table")
        for part in parts:
            check_identifier(part)
        return value


class Features(Strict):
    """Feature columns by kind; their order here is the model's feature order."""

    numeric: list[Identifier] = []
    categorical: list[Identifier] = []
    boolean: list[Identifier] = []

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.boolean]


class Model(Strict):
    """The estimator, its settings and how a candidate is judged."""

    estimator: str = "hist_gradient_boosting"
    params: dict[str, int | float | str | bool | None] = {}
    seed: int = 42
    holdout_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    primary_metric: str | None = None
    promotion_margin: float = Field(0.0, ge=0.0)


class Retrain(Strict):
    """When to fit a new candidate: every run, on given weekdays, every N days, or never."""

    policy: Literal["always", "weekdays", "interval", "never"] = "always"
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = []
    every_days: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _policy_settings(self) -> "Retrain":
        if self.policy == "weekdays" and not self.weekdays:
            raise ValueError("policy 'weekdays' needs a non-empty 'weekdays' list")
        if self.policy == "interval" and not self.every_days:
            raise ValueError("policy 'interval' needs 'every_days'")
        return self


class Schedule(Strict):
    cron: str = "0 2 * * *"
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a 5-field cron expression")
        return value


class Scoring(Strict):
    partitions: int = Field(4, ge=1, le=1024)
    batch_rows: int = Field(100_000, ge=1_000)


class Monitoring(Strict):
    psi_threshold: float = Field(0.2, gt=0.0)


class Retention(Strict):
    """How much prediction history `<job>_predictions` keeps: a published run's rows stay while
    it is one of the newest `keep_runs` or younger than `keep_days`; the run analysts see in
    `<job>_latest` always stays."""

    keep_runs: int = Field(30, ge=1)
    keep_days: int | None = Field(None, ge=1)


class JobSpec(Strict):
    """A scoring job: one table, one model, one DAG."""

    _path: str = PrivateAttr("")  # the file it came from, for error messages
    name: str
    description: str = ""
    owner: str = "data-team"
    source: Source
    features: Features
    target: Identifier
    task: Literal["classification", "regression"]
    model: Model = Model()
    retrain: Retrain = Retrain()
    schedule: Schedule = Schedule()
    scoring: Scoring = Scoring()
    monitoring: Monitoring = Monitoring()
    retention: Retention = Retention()
    retries: int = Field(2, ge=0, le=10)
    tags: list[str] = []

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not JOB_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a valid job name (lower-case letter first, then letters, "
                "digits, _; max 40 chars)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "JobSpec":
        if not self.features.all:
            raise ValueError("features: list at least one numeric, categorical or boolean column")
        seen: set[str] = set()
        for column in self.features.all:
            if column in seen:
                raise ValueError(f"features: column {column!r} is listed twice")
            seen.add(column)
        reserved = {self.source.key, self.source.timestamp, self.target}
        clash = reserved & seen
        if clash:
            raise ValueError(f"features: {sorted(clash)} is the key, timestamp or target column")
        if self.model.estimator not in estimators.names(self.task):
            raise ValueError(
                f"model.estimator: {self.model.estimator!r} is not available for {self.task}; "
                f"choose one of {estimators.names(self.task)}"
            )
        if self.model.primary_metric and self.model.primary_metric not in METRICS[self.task]:
            raise ValueError(
                f"model.primary_metric: {self.model.primary_metric!r} is not a {self.task} "
                f"metric; choose one of {list(METRICS[self.task])}"
            )
        return self

    @property
    def primary_metric(self) -> str:
        return self.model.primary_metric or METRICS[self.task][0]

    @property
    def estimator(self) -> estimators.Estimator:
        return estimators.ESTIMATORS[(self.task, self.model.estimator)]

    @property
    def path(self) -> str:
        """The file the spec came from (for messages), or `job <name>`."""
        return self._path or f"job {self.name}"

    @property
    def predictions_table(self) -> str:
        return f"{self.name}_predictions"

    @property
    def latest_view(self) -> str:
        return f"{self.name}_latest"

    @property
    def lineage_view(self) -> str:
        return f"{self.name}_lineage"


def load_spec(path: Path | str) -> JobSpec:
    """Parse one job spec; any problem is a SpecError naming the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: job spec not found") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a job spec must be a YAML mapping")
    raw.setdefault("name", path.stem)
    try:
        spec = JobSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(path, exc)) from None
    spec._path = str(path)
    return spec


def spec_from_record(data: dict, path: str = "") -> JobSpec:
    """A spec frozen into a run or a model's metadata, as the typed model again."""
    spec = JobSpec.model_validate(data)
    spec._path = path
    return spec


def describe_validation_error(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid job spec"]
    for err in exc.errors():
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        key = key.lstrip(".") or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see README 'Job specs')"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def spec_paths(directory: Path | str) -> list[Path]:
    return sorted(Path(directory).glob("*.yaml"))


def scan_specs(directory: Path | str) -> tuple[list[JobSpec], dict[Path, SpecError]]:
    """Every spec in a folder that loads, and the SpecError of each file that does not.

    One broken file never hides the others; a second file for a job name is an error of its own.
    """
    specs: dict[str, JobSpec] = {}
    problems: dict[Path, SpecError] = {}
    for path in spec_paths(directory):
        try:
            spec = load_spec(path)
        except SpecError as exc:
            problems[path] = exc
            continue
        first = specs.get(spec.name)
        if first:
            problems[path] = SpecError(
                f"{path}: name: job {spec.name!r} is defined twice (also in {first.path})"
            )
            continue
        specs[spec.name] = spec
    return list(specs.values()), problems


def load_specs(directory: Path | str) -> list[JobSpec]:
    """All job specs in a folder, or one SpecError listing every broken file."""
    specs, problems = scan_specs(directory)
    if problems:
        raise SpecError("\n".join(str(exc) for exc in problems.values()))
    return specs


def declared_name(path: Path) -> str | None:
    """The `name:` a spec file declares, if the file reads as a YAML mapping."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return raw.get("name") if isinstance(raw, dict) else None


def find_spec(job: str, directory: Path | str) -> JobSpec:
    """The spec named `job` in a folder; other broken files do not matter, its own one does."""
    specs, problems = scan_specs(directory)
    for path, exc in problems.items():
        if job in (path.stem, declared_name(path)):
            raise exc
    found = {s.name: s for s in specs}
    if job in found:
        return found[job]
    message = f"no job named {job!r} in {directory}; known jobs: {sorted(found)}"
    if problems:
        broken = ", ".join(path.name for path in problems)
        message += f"; broken spec files (see `python -m pipeline check`): {broken}"
    raise SpecError(message)


NUMERIC_TYPES = {"smallint", "integer", "bigint", "real", "double precision", "numeric"}
TIMESTAMP_TYPES = {"timestamp with time zone", "timestamp without time zone", "date"}
# The Postgres types a column may have for the role the spec gives it.
ALLOWED_TYPES = {
    "source.timestamp": TIMESTAMP_TYPES,
    "features.numeric": NUMERIC_TYPES,
    "features.boolean": {"boolean"},
}


def check_columns(spec: JobSpec, columns: dict[str, str]) -> None:
    """Fail naming the spec file and key when a column is missing or has the wrong type."""
    where = f"{spec.path}: "
    wanted = [
        ("source.key", spec.source.key),
        ("source.timestamp", spec.source.timestamp),
        ("target", spec.target),
    ]
    for kind in ("numeric", "categorical", "boolean"):
        for i, column in enumerate(getattr(spec.features, kind)):
            wanted.append((f"features.{kind}[{i}]", column))
    for key, column in wanted:
        if column not in columns:
            raise SpecError(
                f"{where}{key}: column {column!r} not found in table {spec.source.table} "
                f"(it has: {', '.join(sorted(columns))})"
            )
        role = key.split("[")[0]
        allowed = ALLOWED_TYPES.get(role)
        if allowed and columns[column] not in allowed:
            raise SpecError(
                f"{where}{key}: column {spec.source.table}.{column} has type "
                f"{columns[column]!r}; a {role} column must be one of {sorted(allowed)}"
            )
