"""The sections of a job spec (source, features, model, retrain, schedule, scoring, monitoring,
validation, governance, retention, alerts), each a strict pydantic model with a description
per key."""

import re
from datetime import date, timedelta
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from pipeline.spec import estimators
from pipeline.spec.names import LOWER_IS_BETTER, METRICS, Identifier, check_identifier

EARLIEST_START = date(2000, 1, 1)


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
        "before the run's `as_of`. Its contract: a row's timestamp is when it last changed "
        "(see docs/jobs.md 'Time')"
    )
    volatile: list[Identifier] = Field(
        [],
        description="columns the source computes from the clock (a view's `now() - "
        "last_login`): their values change without the row's timestamp changing, so a job "
        "with any may not use `scoring.mode: incremental`",
    )
    pii: list[Identifier] = Field(
        [],
        description="columns holding personal data (an identifier, a name, an email, free "
        "text), the key among them if it is one: their values are never shown in Data Docs, "
        "run reports, alerts, logs or error messages (a sampled value is written `pii:` and "
        "12 hex digits of its sha256). A column that is not the key, the timestamp, a "
        "feature or the target is never snapshotted at all",
    )
    label_timestamp: Identifier | None = Field(
        None,
        description="a timestamp column saying when each row's target became known (a label "
        "that lands days after the row): a training snapshot then keeps only the rows labelled "
        "before the run's `as_of`, so a backfill learns only from labels known at its cut-off. "
        "Unset: a row's target counts as known once its `timestamp` is before the cut-off",
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
        "`pipeline/spec/estimators.py`). "
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
    """When Airflow runs the job, and the first date it may run for."""

    cron: str = Field(
        "0 2 * * *",
        description="when Airflow starts a run: a 5-field cron expression "
        "(minute hour day-of-month month day-of-week)",
    )
    timezone: str = Field(
        "UTC",
        description="the time zone `cron` is read in, an IANA name, e.g. `Europe/Berlin`",
    )
    start: date = Field(
        EARLIEST_START,
        description="the DAG's start date: Airflow runs no logical date before it, so a "
        "backfill may go back to it and no further. The default is far in the past so that "
        "any cut-off a user gives works; the DAG never catches up on its own "
        "(`catchup` is off): backfills are asked for",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a 5-field cron expression")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone name (IANA, e.g. UTC or Europe/Berlin)"
            ) from None
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
    mode: Literal["full", "incremental"] = Field(
        "full",
        description="`full`: every run scores the whole table. `incremental`: while the "
        "serving model, the features and the feature code are those of the previous published "
        "run, a run scores only the rows whose timestamp is at or after that run's as_of "
        "(less `lookback`) and drops the keys that left the table; otherwise it runs in full "
        "and its summary says why (docs/jobs.md 'Incremental scoring')",
    )
    lookback: str = Field(
        "1d",
        pattern=r"^\d+[mhd]$",
        description="incremental mode: how far before the previous run's as_of a run reads "
        "again, for rows written late under an earlier timestamp: minutes, hours or days, "
        "e.g. `30m`, `6h`, `1d`",
    )
    full_every_days: int = Field(
        7,
        ge=1,
        description="incremental mode: a run scores the whole table again once this many "
        "days passed since the last full run's as_of",
    )
    rows: Literal["all", "unlabelled"] = Field(
        "all",
        description="`all`: score every row; `unlabelled`: only the rows whose target is "
        "not known at the run's cut-off (a customer who already churned needs no churn score)",
    )

    @property
    def lookback_delta(self) -> timedelta:
        """`lookback` as a duration."""
        unit = {"m": "minutes", "h": "hours", "d": "days"}[self.lookback[-1]]
        return timedelta(**{unit: int(self.lookback[:-1])})


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
    min_new_rows: int = Field(
        1_000,
        ge=1,
        description="drift is measured on two populations: the whole scored table and the rows "
        "new or changed since the previous published run (timestamp at or after its as_of). "
        "Alerts and `retrain.policy: on_drift` use the new rows when there are at least this "
        "many of them (the sampling noise of a PSI over 1,000 rows is about 0.01), else the "
        "whole table",
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
    """How every snapshot is checked: the checks the pipeline makes besides the job's suites,
    and how the suites are run."""

    all_null_features: Literal["warning", "critical"] = Field(
        "warning",
        description="the severity of rows whose feature columns are all NULL (the model "
        "scores them all the same): `warning` reports them, `critical` stops the run",
    )
    chunk_rows: int = Field(
        1_000_000,
        ge=1_000,
        description="rows Great Expectations validates at once with the row-wise expectations "
        "(nulls, ranges, sets, patterns, the key's uniqueness): bounds validation's memory, "
        "whatever the table's size. The others (means, distinct counts, a non-key column's "
        "uniqueness) read their columns whole",
    )


USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,250}$")
ApprovalCondition = Literal["first_model", "force_promote", "alert", "small_gain"]


class Approval(Strict):
    """When a promotion waits for a person, who may answer, and for how long."""

    when: Literal["never", "always"] | list[ApprovalCondition] = Field(
        "never",
        description="`never`: the gate promotes on its own; `always`: every candidate that "
        "the gate (or `force_promote`) would promote waits for a person; or a list of "
        "conditions, any of which makes it wait: `first_model` (the job has no champion yet), "
        "`force_promote` (set at trigger time), `alert` (the job's last published run raised a "
        "drift or performance alert), `small_gain` (the gain over the champion is below "
        "`small_gain`)",
    )
    small_gain: float = Field(
        0.01,
        ge=0,
        description="with `small_gain` in `when`: a gain on the primary metric below this "
        "asks a person (the gate's own margin still applies first)",
    )
    approvers: list[str] = Field(
        [],
        description="the Airflow user ids who may answer (Approve or Reject, with a reason, on "
        "the Required Actions page); nobody else can. Required unless `when` is `never`",
    )
    timeout_hours: float = Field(
        24,
        gt=0,
        le=24 * 30,
        description="how long a request waits; with no answer by then the champion stays and "
        "the candidate is recorded as timed out",
    )
    on_approve: Literal["next_run", "rescore"] = Field(
        "next_run",
        description="`next_run`: the approved candidate is champion from the job's next run; "
        "`rescore`: the approval also triggers a run at once that scores with it",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        return {"when": value} if isinstance(value, str | list) else value

    @field_validator("approvers")
    @classmethod
    def _user_ids(cls, value: list[str]) -> list[str]:
        for user in value:
            if not USER_ID.match(user):
                raise ValueError(f"{user!r} is not an Airflow user id (letters, digits, _ . @ -)")
        return value

    @model_validator(mode="after")
    def _approvers(self):
        if self.when != "never" and not self.approvers:
            raise ValueError(
                "approvers: name the Airflow user ids who may approve (when is not never)"
            )
        if isinstance(self.when, list) and len(set(self.when)) != len(self.when):
            raise ValueError(f"when: a condition is listed twice: {self.when}")
        return self


class Governance(Strict):
    """What the job does for the people its data is about, and who signs off its models."""

    on_erasure: Literal["flag", "retrain"] = Field(
        "flag",
        description="when an erasure removes rows a model was trained on (`python -m "
        "pipeline erase`): `flag` marks the model version and its card; `retrain` also makes "
        "the next run fit a candidate without those rows, gated as usual",
    )
    shadow_runs: int = Field(
        0,
        ge=0,
        le=30,
        description="a candidate the gate would promote first scores beside the champion for "
        "this many published runs, into `scoring.<job>_shadow` (never `<job>_latest`); then "
        "both are judged on the same labels that arrived since (realised performance), and it "
        "is promoted (or its approval asked) only if it beats the champion there by "
        "`model.promotion_margin`. 0: promote on the holdout alone. A forced promotion and a "
        "job's first model skip the shadow",
    )
    approval: Approval = Field(
        Approval(),
        description="whether a promotion waits for a person in Airflow's Required Actions "
        "(docs/operations.md 'Approvals'); the run meanwhile scores with the champion",
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
        list(get_args(AlertKind)),
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
        list(get_args(AlertKind)),
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
    """Who is told when a run fails or finds something wrong (docs/jobs.md "Alerts")."""

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
