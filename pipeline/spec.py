"""Job specs: one YAML file per scoring job, parsed into typed, validated models.

Imports only pydantic and yaml, so DAG files can load specs at parse time cheaply.
"""

import re
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    AliasChoices,
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
MAX_CLASSES = 50  # more distinct target values than this is a number or an id, not a class
POSITIVE_NAMES = ("true", "1", "yes")  # a binary target's positive class when none is named


def class_label(value) -> str:
    """A target value as the class name models, specs and predictions use: `str()` of it, with
    integral numbers written as integers (a NULL-able integer column reads as floats)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return class_label(value.item())
    return str(value)


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

    table: str = Field(
        description="the table to learn from and to score, written `schema.table`, "
        "e.g. `demo.customers`"
    )
    key: Identifier = Field(
        description="the table's unique key column: predictions are keyed by it, scoring "
        "partitions are key ranges, and the holdout is chosen by a stable hash of it"
    )
    timestamp: Identifier = Field(
        description="a timestamp or date column: a run's snapshots keep the rows where it is "
        "before the run's `as_of`"
    )

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

    numeric: list[Identifier] = Field(
        [],
        description="number columns (Postgres integer, floating-point or numeric types); a "
        "missing value is replaced by the training median and flagged",
    )
    categorical: list[Identifier] = Field(
        [],
        description="category columns of any type, one-hot encoded; categories with fewer "
        "than 20 training rows, and categories new at scoring time, share one column",
    )
    boolean: list[Identifier] = Field(
        [],
        description="boolean columns; a missing value is replaced by the most frequent one "
        "and flagged",
    )

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.boolean]


class Model(Strict):
    """The estimator, its settings and how a candidate is judged."""

    estimator: str = Field(
        "hist_gradient_boosting",
        description="the scikit-learn estimator, by name (the table in "
        "`pipeline/model/estimators.py`). "
        + "; ".join(
            f"{task}: " + ", ".join(f"`{name}`" for name in estimators.names(task))
            for task in METRICS
        ),
    )
    params: dict[str, int | float | str | bool | None] = Field(
        {},
        description="the estimator's settings, passed to its scikit-learn class, e.g. "
        "`{max_iter: 200}`; a name the class does not have is an error",
    )
    seed: int = Field(
        42,
        description="the estimator's random seed (`random_state`): the same data, spec and "
        "seed fit the same model",
    )
    holdout_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=0.9,
        description="the share of training rows held out to measure the candidate and the "
        "champion, chosen by a stable hash of the key (the same keys every run)",
    )
    primary_metric: str | None = Field(
        None,
        description="the holdout metric the promotion gate compares. "
        + "; ".join(
            f"{task}: " + ", ".join(f"`{metric}`" for metric in metrics)
            for task, metrics in METRICS.items()
        )
        + " ("
        + ", ".join(f"`{metric}`" for metric in sorted(LOWER_IS_BETTER))
        + ": lower is better). Unset: the first one of the job's task",
    )
    promotion_margin: float = Field(
        0.0,
        ge=0.0,
        description="how much a candidate must beat the champion by on the primary metric to "
        "become champion, in the metric's units; 0: any improvement",
    )


class Retrain(Strict):
    """When to fit a new candidate: every run, on given weekdays, every N days, or never."""

    policy: Literal["always", "weekdays", "interval", "on_drift", "never"] = Field(
        "always",
        description="`always`: every run; `weekdays`: on the days listed in `weekdays`; "
        "`interval`: when the champion is `every_days` old; `on_drift`: when the last published "
        "run raised a drift or realised-performance alert; `never`: score with the champion "
        "only. A job without a champion trains anyway, and a run's `retrain` trigger parameter "
        "overrides the policy",
    )
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        [],
        description="policy `weekdays` (required with it): the days of the week of the run's "
        "`as_of`, in UTC, on which to retrain",
    )
    every_days: int | None = Field(
        None,
        ge=1,
        description="policy `interval` (required with it): retrain when the champion is at "
        "least this many days old at the run's `as_of`",
    )

    @model_validator(mode="after")
    def _policy_settings(self) -> "Retrain":
        if self.policy == "weekdays" and not self.weekdays:
            raise ValueError("policy 'weekdays' needs a non-empty 'weekdays' list")
        if self.policy == "interval" and not self.every_days:
            raise ValueError("policy 'interval' needs 'every_days'")
        return self


class Schedule(Strict):
    cron: str = Field(
        "0 2 * * *",
        description="when Airflow starts a run: a 5-field cron expression "
        "(minute hour day-of-month month day-of-week)",
    )
    timezone: str = Field(
        "UTC",
        description="the time zone `cron` is read in, an IANA name, e.g. `Europe/Berlin`",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a 5-field cron expression")
        return value


class Scoring(Strict):
    partitions: int = Field(
        4,
        ge=1,
        le=1024,
        description="how many key-range partitions a run's scoring data is split into, each "
        "scored by a parallel (mapped) Airflow task; at most one per Parquet row group",
    )
    batch_rows: int = Field(
        100_000,
        ge=1_000,
        description="rows per Parquet row group of a snapshot and per `predict()` call: "
        "bounds a task's memory",
    )


class Performance(Strict):
    """Realised performance: published predictions judged once their labels arrive."""

    min_labelled: int = Field(
        100,
        ge=1,
        description="a run's realised figures are trusted (and may alert) once at least this "
        "many of its keys got a label they did not have at its `as_of`",
    )
    tolerance: float = Field(
        0.05,
        ge=0.0,
        description="a drop of the primary metric below the model's holdout figure by more "
        "than this (in the metric's units) is a performance alert",
    )
    top_k: int = Field(
        100,
        ge=1,
        description="binary classification: `precision_at_k` is the share of positives among "
        "the k keys scored highest",
    )


class Monitoring(Strict):
    """Drift of the scored data from the data the champion learned on, and what an alert does."""

    psi_watch: float = Field(
        0.1,
        gt=0.0,
        description="a population stability index (PSI) at or above this is `watch`: stored "
        "and shown, no alert",
    )
    psi_alert: float = Field(
        0.25,
        gt=0.0,
        validation_alias=AliasChoices("psi_alert", "psi_threshold"),
        description="a feature's or the score's PSI (against the champion's training data and "
        "holdout scores) above this is a drift alert; `psi_threshold` is its older name",
    )
    ks_alert: float = Field(
        0.2,
        gt=0.0,
        le=1.0,
        description="numeric features: a Kolmogorov-Smirnov statistic above this is an alert "
        "(a second opinion beside PSI)",
    )
    unseen_share_alert: float = Field(
        0.05,
        gt=0.0,
        le=1.0,
        description="categorical features: a share of scored rows with a category the "
        "champion never saw above this is an alert",
    )
    null_rate_change_alert: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="a change of a feature's share of NULLs (scored minus training, either "
        "way) larger than this is an alert",
    )
    on_alert: Literal["record", "fail"] = Field(
        "record",
        description="`record`: store, log and send the alert, then publish; `fail`: stop the "
        "run before it publishes. To retrain after an alert, use `retrain.policy: on_drift`",
    )
    performance: Performance = Field(
        Performance(), description="realised performance once labels arrive"
    )


class Checks(Strict):
    """Checks the pipeline makes on every snapshot besides the job's suites."""

    all_null_features: Literal["warning", "critical"] = Field(
        "warning",
        description="the severity of rows whose feature columns are all NULL (the model "
        "scores them all the same): `warning` reports them, `critical` stops the run",
    )


class Retention(Strict):
    """How much prediction history `<job>_predictions` keeps: a published run's rows stay while
    it is one of the newest `keep_runs` or younger than `keep_days`; the run analysts see in
    `<job>_latest` always stays."""

    keep_runs: int = Field(
        30,
        ge=1,
        description="a published run's predictions stay while it is one of the job's newest "
        "`keep_runs` published runs; older ones are deleted after each publish",
    )
    keep_days: int | None = Field(
        None,
        ge=1,
        description="a run's predictions also stay while the run is younger than this many "
        "days; unset: only `keep_runs` counts. The run `<job>_latest` shows always stays",
    )


AlertKind = Literal["failure", "validation_warning", "drift", "performance"]
ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)
CONN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
EMAIL_ADDRESS = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


def check_conn_id(value: str | None) -> str | None:
    if value is not None and not CONN_ID.match(value):
        raise ValueError(
            f"{value!r} is not an Airflow connection id (letters, digits, _ . -; max 250 chars)"
        )
    return value


def check_kinds(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("list at least one kind of alert, or leave the target out")
    return list(dict.fromkeys(value))


ConnId = Annotated[str | None, AfterValidator(check_conn_id)]
AlertKinds = Annotated[list[AlertKind], AfterValidator(check_kinds)]
KINDS_TEXT = ", ".join(f"`{kind}`" for kind in ALERT_KINDS)


class WebhookAlerts(Strict):
    """A JSON POST per alert to a URL held by an Airflow connection."""

    connection: ConnId = Field(
        None,
        description="the Airflow connection id of the webhook (e.g. from the environment "
        "variable `AIRFLOW_CONN_<ID>`): the URL is its extra `url`, else "
        "`<conn type http or https>://<host>:<port>/<schema>`; its password, if any, is sent "
        "as `Authorization: Bearer`, its extra `headers` as headers. Unset: no webhook",
    )
    kinds: AlertKinds = Field(
        list(ALERT_KINDS),
        description=f"the alerts the webhook receives, any of {KINDS_TEXT}",
    )


class EmailAlerts(Strict):
    """A plain-text email per alert through an SMTP server held by an Airflow connection."""

    connection: ConnId = Field(
        None,
        description="the Airflow connection id of the SMTP server: its host, port, login and "
        "password; extra `from` (the sender; default: the login if it is an address), "
        "`starttls` (default `true`) or `ssl` (TLS from the start, default port 465). "
        "Unset: no email",
    )
    to: list[str] = Field([], description="the recipients' addresses (required with `connection`)")
    kinds: AlertKinds = Field(
        list(ALERT_KINDS),
        description=f"the alerts emailed, any of {KINDS_TEXT}",
    )

    @field_validator("to")
    @classmethod
    def _to(cls, value: list[str]) -> list[str]:
        for address in value:
            if not EMAIL_ADDRESS.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @model_validator(mode="after")
    def _complete(self) -> "EmailAlerts":
        if self.connection and not self.to:
            raise ValueError("list the recipients in 'to'")
        if self.to and not self.connection:
            raise ValueError("name the SMTP server's Airflow connection in 'connection'")
        return self


class Alerts(Strict):
    """Who is told when a run fails or finds something wrong (README "Alerts")."""

    webhook: WebhookAlerts = Field(
        WebhookAlerts(),
        description="a JSON POST per alert (job, run_id, what, title, details, link, text)",
    )
    email: EmailAlerts = Field(
        EmailAlerts(), description="a plain-text email per alert, with the same content"
    )

    def targets(self, kind: str) -> list[WebhookAlerts | EmailAlerts]:
        """The configured targets that receive alerts of `kind`."""
        return [t for t in (self.webhook, self.email) if t.connection and kind in t.kinds]


class JobSpec(Strict):
    """A scoring job: one table, one model, one DAG."""

    _path: str = PrivateAttr("")  # the file it came from, for error messages
    name: str = Field(
        description="the job's name: its DAG id and the prefix of its objects in `scoring` "
        "(`<name>_predictions`, `<name>_latest`); a lower-case letter, then lower-case "
        "letters, digits or `_`, at most 40 characters"
    )
    description: str = Field(
        "",
        description="what the job is for, in a sentence: the DAG's description and the "
        "model card's summary",
    )
    owner: str = Field(
        "data-team", description="who answers for the job: the owner of its Airflow tasks"
    )
    source: Source = Field(description="where the rows come from: one Postgres table")
    features: Features = Field(
        description="the feature columns by kind, in the model's feature order: at least one "
        "column, none twice, never the key, timestamp or target column"
    )
    target: Identifier = Field(
        description="the column to predict; training rows are those where it is not NULL"
    )
    task: Literal["classification", "regression"] = Field(
        description="`classification`: predict a class, binary (2 classes) or multi-class "
        f"(3 to {MAX_CLASSES}); `regression`: predict a number"
    )
    classes: list[str] | None = Field(
        None,
        description="classification only: the target's classes, fixed: a run whose training "
        "data has other classes fails. Unset: the classes in the training data "
        "(2 classes: binary, 3 or more: multi-class)",
    )
    positive_class: str | None = Field(
        None,
        description="binary classification only: the class whose probability is a "
        "prediction's `score`. Unset: the class named "
        + ", ".join(f"`{name}`" for name in POSITIVE_NAMES[:-1])
        + f" or `{POSITIVE_NAMES[-1]}` (any case); a target with no such class must name it",
    )
    model: Model = Field(
        Model(),
        description="the estimator, its settings and how a candidate is judged against the "
        "champion",
    )
    retrain: Retrain = Field(
        Retrain(),
        description="when a run fits a new candidate; a run that does not scores with the champion",
    )
    schedule: Schedule = Field(Schedule(), description="when Airflow runs the job")
    scoring: Scoring = Field(Scoring(), description="how scoring splits and batches the rows")
    monitoring: Monitoring = Field(
        Monitoring(), description="drift of the scored features from the training data"
    )
    validation: Checks = Field(
        Checks(),
        description="checks made on every snapshot besides the job's suites in "
        "`expectations/<job>/`",
    )
    retention: Retention = Field(
        Retention(), description="how much prediction history `<job>_predictions` keeps"
    )
    alerts: Alerts = Field(
        Alerts(),
        description="where failures, validation warnings, drift and performance alerts are "
        'sent (README "Alerts"); none configured: nothing is sent',
    )
    retries: int = Field(
        2,
        ge=0,
        le=10,
        description="how many times Airflow retries a failed task, 30 s after the first "
        "failure, then twice as long each time, at most 10 min; errors no retry fixes "
        "(a bad spec, failed validation, missing rights) fail at once",
    )
    tags: list[str] = Field(
        [], description="Airflow tags of the job's DAG; every job's DAG also has `scoring`"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not JOB_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a valid job name (lower-case letter first, then letters, "
                "digits, _; max 40 chars)"
            )
        return value

    @field_validator("classes", mode="before")
    @classmethod
    def _classes(cls, value):
        return None if value is None else [class_label(v) for v in value]

    @field_validator("positive_class", mode="before")
    @classmethod
    def _positive_class(cls, value):
        return None if value is None else class_label(value)

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
        self._check_classes()
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

    def _check_classes(self) -> None:
        if self.task != "classification":
            for key in ("classes", "positive_class"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: only a classification job has classes")
            return
        if self.classes is not None:
            if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
                raise ValueError("classes: list at least 2 different classes")
            if len(self.classes) > MAX_CLASSES:
                raise ValueError(f"classes: at most {MAX_CLASSES} classes")
        if self.positive_class is not None and self.classes is not None:
            if self.positive_class not in self.classes:
                raise ValueError(
                    f"positive_class: {self.positive_class!r} is not one of classes {self.classes}"
                )
            if len(self.classes) != 2:
                raise ValueError("positive_class: only a binary target (2 classes) has one")

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

    @property
    def drift_view(self) -> str:
        return f"{self.name}_drift"

    @property
    def performance_view(self) -> str:
        return f"{self.name}_performance"


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
        if role == "target" and spec.task == "regression":
            allowed = NUMERIC_TYPES
        if allowed and columns[column] not in allowed:
            raise SpecError(
                f"{where}{key}: column {spec.source.table}.{column} has type "
                f"{columns[column]!r}; a {role} column must be one of {sorted(allowed)}"
            )
