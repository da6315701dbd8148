"""Starter Great Expectations suites from a job's current data, for a person to review.

`python -m pipeline suggest-expectations <job>` snapshots the table as of now and writes
`expectations/<job>/training.json` and `scoring.json`. Every expectation says what risk it
guards (`meta.notes`) and how bad a failure is (`meta.severity`). A target whose values do not
fit the job's task is refused first (`check_target_in_table`, also used by `check`), before
anything is written.
"""

import logging
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pipeline.contracts import dumps, plain_json
from pipeline.datafiles.snapshots import read_snapshot
from pipeline.errors import DataValidationError
from pipeline.logic.targets import check_target
from pipeline.spec import MAX_CLASSES, JobSpec, check_columns
from pipeline.spec.names import KINDS
from pipeline.stages.snapshot import take_snapshot
from pipeline.validation.suites import suite_path
from pipeline.warehouse import db
from pipeline.warehouse.sources import distinct_target_values, table_columns

log = logging.getLogger(__name__)

FINITE = 1e300  # numbers beyond this are infinities: the model cannot use them
MAX_SET_SIZE = 50
# a class's share of training rows may move within [share / BALANCE, share * BALANCE]
BALANCE = 2


def expectation(kind: str, severity: str, notes: str, **kwargs) -> dict:
    return {"type": kind, "kwargs": kwargs, "meta": {"severity": severity, "notes": notes}}


def column_expectations(spec: JobSpec, frame: pd.DataFrame, column: str) -> list[dict]:
    """Null bounds, ranges and value sets for one feature or target column."""
    values = frame[column]
    null_fraction = float(values.isna().mean()) if len(values) else 0.0
    out = [
        expectation(
            "expect_column_values_to_not_be_null",
            "warning",
            f"{column} was {null_fraction:.1%} null; far more nulls means a broken feed upstream",
            column=column,
            mostly=round(max(0.0, 1 - 2 * null_fraction - 0.01), 3),
        )
    ]
    present = values.dropna()
    if column in spec.features.numeric or (column == spec.target and spec.task == "regression"):
        out.append(
            expectation(
                "expect_column_values_to_be_between",
                "critical",
                f"{column} must be finite: infinities break the model",
                column=column,
                min_value=-FINITE,
                max_value=FINITE,
            )
        )
        if len(present):
            low, high = float(present.min()), float(present.max())
            pad = 0.25 * (high - low)
            out.append(
                expectation(
                    "expect_column_values_to_be_between",
                    "warning",
                    f"{column} was within [{low:g}, {high:g}]; values far outside are unit or "
                    "parsing errors",
                    column=column,
                    min_value=max(0.0, low - pad) if low >= 0 else low - pad,
                    max_value=high + pad,
                    mostly=0.999,
                )
            )
    elif column in spec.features.categorical and 0 < present.nunique() <= MAX_SET_SIZE:
        out.append(
            expectation(
                "expect_column_values_to_be_in_set",
                "warning",
                f"{column} had these categories; an unseen one is scored as 'infrequent'",
                column=column,
                value_set=sorted(plain_json(present.unique().tolist())),  # ints stay ints
                mostly=0.99,
            )
        )
    elif column in spec.features.boolean:
        out.append(
            expectation(
                "expect_column_values_to_be_in_set",
                "critical",
                f"{column} is a flag: only true/false",
                column=column,
                value_set=[True, False],
            )
        )
    return out


def floor4(value: float) -> float:
    """`value` rounded down to 4 decimals, so a bound made from it still holds for the data
    (after float noise is rounded away: 1 - 0.9 is 0.1, not 0.0999)."""
    return math.floor(round(value * 10_000, 6)) / 10_000


def percent(share: float) -> str:
    return f"{share:.1%}" if share >= 0.01 else f"{share:.2%}"


def class_expectations(spec: JobSpec, frame: pd.DataFrame) -> list[dict]:
    """A classification target's class set, and each class's share of the training rows.

    The classes are written in the column's own type (integers stay integers, flags stay
    booleans), as GX compares them with the snapshot's values. GX 1.x has no per-value
    proportion expectation, so a class's share is bounded with `mostly`, which counts the
    fraction of (non-null) rows that pass: at least `low` of the rows are in {class}
    (`expect_column_values_to_be_in_set`), and at least 1 - `high` are not in it
    (`expect_column_values_to_not_be_in_set`).
    """
    column = spec.target
    shares = frame[column].dropna().value_counts(normalize=True, sort=False)
    shares = shares[shares > 0].sort_index()  # a categorical counts its unused categories as 0
    classes = plain_json(shares.index.tolist())  # ints stay ints, booleans stay booleans
    out = [
        expectation(
            "expect_column_values_to_be_in_set",
            "critical",
            f"{column} had the classes {classes}; any other value is a new or recoded label the "
            "model would learn as a class of its own: the run stops before training",
            column=column,
            value_set=classes,
        ),
        expectation(
            "expect_column_distinct_values_to_contain_set",
            "critical",
            f"every class of {column} needs training rows: a class missing from the training "
            "data could not be predicted any more: the run stops before training",
            column=column,
            value_set=classes,
        ),
    ]
    for value, share in zip(classes, shares.tolist(), strict=True):
        low, high = share / BALANCE, share * BALANCE
        balance = (
            f"class {value!r} was {percent(share)} of training rows; a share outside "
            f"[{percent(low)}, {percent(min(high, 1))}] means the labelling or the population "
            "changed, and with it what the model learns"
        )
        out.append(
            expectation(
                "expect_column_values_to_be_in_set",
                "warning",
                balance,
                column=column,
                value_set=[value],
                mostly=floor4(low),
            )
        )
        if high < 1:
            out.append(
                expectation(
                    "expect_column_values_to_not_be_in_set",
                    "warning",
                    balance,
                    column=column,
                    value_set=[value],
                    mostly=floor4(1 - high),
                )
            )
    return out


def suggest_suite(spec: JobSpec, kind: str, frame: pd.DataFrame) -> dict:
    """A starter suite for one snapshot kind, from that snapshot's data."""
    key, ts = spec.source.key, spec.source.timestamp
    exps = [
        expectation(
            "expect_column_to_exist",
            "critical",
            f"{column} is read by the job; without it nothing can be scored",
            column=column,
        )
        for column in spec.snapshot_columns(kind)
    ]
    exps += [
        expectation(
            "expect_table_row_count_to_be_between",
            "critical",
            "a table that shrank to under half (or grew past 3x) since the previous snapshot is an "
            "incident, not a normal night",
            min_value={"$PARAMETER": "min_row_count"},
            max_value={"$PARAMETER": "max_row_count"},
        ),
        expectation(
            "expect_column_values_to_not_be_null",
            "critical",
            "predictions are keyed by it: a null key cannot be published",
            column=key,
        ),
        expectation(
            "expect_column_values_to_be_unique",
            "critical",
            "duplicate keys would publish two predictions for one row",
            column=key,
        ),
        expectation(
            "expect_column_values_to_not_be_null",
            "critical",
            "the point-in-time cut-off needs a timestamp on every row",
            column=ts,
        ),
        expectation(
            "expect_column_values_to_be_between",
            "warning",
            "a timestamp later than now means a broken clock or load",
            column=ts,
            max_value={"$PARAMETER": "now"},
        ),
    ]
    for column in spec.features.all:
        exps += column_expectations(spec, frame, column)
    if kind == "training":
        if spec.task == "classification":
            exps += class_expectations(spec, frame)
        else:
            exps += column_expectations(spec, frame, spec.target)
    return {
        "name": f"{spec.name}.{kind}",
        "expectations": exps,
        "meta": {
            "job": spec.name,
            "kind": kind,
            "generated_by": "python -m pipeline suggest-expectations",
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows_profiled": int(len(frame)),
            "review": "Starter suite: check every bound and severity before committing it.",
        },
    }


def check_target_values(spec: JobSpec, values: list) -> str:
    """`check_target` on values from `distinct_target_values`: a one-line description of the
    target, or a DataValidationError. More than MAX_CLASSES values were cut off by the query,
    so the message says "more than" rather than a count the table does not have."""
    cut = len(values) > MAX_CLASSES
    try:
        description = check_target(spec, values)
    except DataValidationError as exc:
        if not cut:
            raise
        more = f"has more than {MAX_CLASSES} distinct values"
        message = re.sub(r"has \d+ distinct values", more, str(exc), count=1)
        raise DataValidationError(message) from None
    if cut and spec.task == "regression":
        description = f"numeric target, more than {MAX_CLASSES} distinct values"
    return description


def check_target_in_table(url: str, spec: JobSpec) -> str:
    """The job's columns are in its table with the right types and its target's values fit the
    task (a DataValidationError or SpecError otherwise); a one-line description of the target.
    """
    with db.transaction(url) as conn:
        check_columns(spec, table_columns(conn, spec.source.table))
        values = distinct_target_values(conn, spec)
    return check_target_values(spec, values)


def write_suggestions(
    url: str, spec: JobSpec, overwrite: bool = False, as_of: datetime | None = None
) -> list[Path]:
    """Profile the table as of `as_of` (default now) and write starter suites; existing ones
    need `overwrite`.

    A target that does not fit the task is refused before any snapshot is taken.
    """
    target = check_target_in_table(url, spec)
    log.info("job %s: %s", spec.name, target)
    written = []
    as_of = as_of or datetime.now(UTC)
    for kind in KINDS:
        path = suite_path(spec.name, kind)
        if path.exists() and not overwrite:
            log.warning("%s exists; not overwritten (use --overwrite)", path)
            continue
        frame = read_snapshot(take_snapshot(spec, kind, as_of, url))
        suite = suggest_suite(spec, kind, frame)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(suite, indent=2) + "\n")
        written.append(path)
    return written
