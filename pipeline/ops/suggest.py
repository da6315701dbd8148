"""Starter Great Expectations suites from a job's current data, for a person to review.

`python -m pipeline suggest-expectations <job>` snapshots the table as of now and writes
`expectations/<job>/training.json` and `scoring.json`. Every expectation says what risk it
guards (`meta.notes`) and how bad a failure is (`meta.severity`).
"""

import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pipeline.contracts import dumps, plain_json
from pipeline.spec import JobSpec
from pipeline.stages.snapshot import KINDS, read_snapshot, snapshot_columns, take_snapshot
from pipeline.stages.validate import suite_path

log = logging.getLogger(__name__)

FINITE = 1e300  # numbers beyond this are infinities: the model cannot use them
MAX_SET_SIZE = 50


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
        for column in snapshot_columns(spec, kind)
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
        target = frame[spec.target].dropna()
        if spec.task == "classification":
            exps.append(
                expectation(
                    "expect_column_unique_value_count_to_be_between",
                    "critical",
                    "a binary classifier needs both classes in its training data",
                    column=spec.target,
                    min_value=2,
                    max_value=2,
                )
            )
            if len(target) and pd.api.types.is_bool_dtype(target):
                share = float(target.mean())
                exps.append(
                    expectation(
                        "expect_column_mean_to_be_between",
                        "warning",
                        f"the positive class was {share:.1%} of training rows; a big shift in "
                        "class balance changes what the model learns",
                        column=spec.target,
                        min_value=round(share / 2, 4),
                        max_value=round(min(1.0, share * 2), 4),
                    )
                )
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


def write_suggestions(url: str, spec: JobSpec, overwrite: bool = False) -> list[Path]:
    """Profile the current table and write starter suites; existing ones need `overwrite`."""
    written = []
    as_of = datetime.now(UTC)
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
