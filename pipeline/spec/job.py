"""A scoring job: one table, one model, one DAG (`JobSpec`, the root of a job spec file)."""

from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from pipeline.spec import estimators
from pipeline.spec.names import (
    JOB_NAME,
    MAX_CLASSES,
    METRICS,
    POSITIVE_NAMES,
    Identifier,
    class_label,
)
from pipeline.spec.sections import (
    Alerts,
    Checks,
    Features,
    Governance,
    Model,
    Monitoring,
    Retention,
    Retrain,
    Schedule,
    Scoring,
    Source,
    Strict,
)


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
    governance: Governance = Field(
        Governance(),
        description="what an erasure of personal data does to the job's models, and when a "
        "promotion waits for a person's approval",
    )
    retention: Retention = Field(
        Retention(), description="how much prediction history `<job>_predictions` keeps"
    )
    alerts: Alerts = Field(
        Alerts(),
        description="where failures, validation warnings, drift and performance alerts are "
        'sent (docs/jobs.md "Alerts"); none configured: nothing is sent',
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
        if self.source.label_timestamp:
            reserved.add(self.source.label_timestamp)
        clash = reserved & seen
        if clash:
            raise ValueError(
                f"features: {sorted(clash)} is the key, a timestamp or the target column"
            )
        self._check_classes()
        self._check_incremental()
        self._check_pii()
        if self.governance.shadow_runs > self.retention.keep_runs:
            raise ValueError(
                f"governance.shadow_runs: {self.governance.shadow_runs} is more than "
                f"retention.keep_runs ({self.retention.keep_runs}): the first shadow runs' "
                "scores would be deleted before the challenger is judged on them"
            )
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

    def _check_incremental(self) -> None:
        read = {*self.snapshot_columns("training"), self.source.label_timestamp}
        unknown = set(self.source.volatile) - read
        if unknown:
            raise ValueError(
                f"source.volatile: {sorted(unknown)} is not a column the job reads "
                "(its key, timestamps, features or target)"
            )
        if self.scoring.mode == "incremental" and self.source.volatile:
            raise ValueError(
                "scoring.mode: incremental needs every value to change only with the row's "
                f"timestamp, but source.volatile names {list(self.source.volatile)}, computed "
                "from the clock: they change every night without the timestamp moving, so an "
                "incremental run would keep stale scores. Use mode full, or store the value "
                "with its own timestamp"
            )

    def _check_pii(self) -> None:
        outside = set(self.source.pii) - {*self.snapshot_columns("training")}
        if outside:
            raise ValueError(
                f"source.pii: {sorted(outside)} is not a column the job snapshots (key, timestamp, "
                "features, target): it never snapshots or shows another, so leave it out"
            )

    @property
    def personal(self) -> frozenset[str]:
        """The columns whose values are never shown (`source.pii`)."""
        return frozenset(self.source.pii)

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

    def snapshot_columns(self, kind: str) -> list[str]:
        """A snapshot's columns: key, timestamp, features in spec order, and for a training
        snapshot the target."""
        columns = [self.source.key, self.source.timestamp, *self.features.all]
        if kind == "training":
            columns.append(self.target)
        return columns

    def scoring_inputs(self) -> dict:
        """The part of the spec that makes a row's score, the model aside (an incremental run
        needs it unchanged since the previous run)."""
        read = {"table", "key", "timestamp", "label_timestamp"}
        return {
            "source": self.source.model_dump(mode="json", include=read),
            "features": self.features.model_dump(mode="json"),
            "target": self.target,
            "task": self.task,
            "classes": self.classes,
            "positive_class": self.positive_class,
            "rows": self.scoring.rows,
        }

    @property
    def predictions_table(self) -> str:
        return f"{self.name}_predictions"

    @property
    def shadow_table(self) -> str:
        return f"{self.name}_shadow"

    @property
    def changes_table(self) -> str:
        return f"{self.name}_changes"

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

    @property
    def alerts_view(self) -> str:
        return f"{self.name}_alerts"
