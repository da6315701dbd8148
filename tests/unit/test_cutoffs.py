"""A backfill's cut-offs: oldest first, every step or cron time, the last one included."""

from datetime import UTC, datetime

import pytest

from pipeline.errors import PipelineError
from pipeline.logic.cutoffs import cutoff_series, parse_timestamp


def at(text: str) -> datetime:
    return parse_timestamp(text)


def test_monthly_steps_keep_the_day_and_include_the_end():
    series = cutoff_series(at("2013-01-31"), at("2013-05-31"), "1mo")
    assert [d.date().isoformat() for d in series] == [
        "2013-01-31", "2013-02-28", "2013-03-31", "2013-04-30", "2013-05-31",
    ]  # fmt: skip


def test_days_weeks_and_a_cron_expression():
    assert len(cutoff_series(at("2013-03-01"), at("2013-03-31"), "1d")) == 31
    assert len(cutoff_series(at("2013-03-01"), at("2013-03-31"), "1w")) == 5
    cron = cutoff_series(at("2013-03-01T00:00:00Z"), at("2013-03-03T23:00:00Z"), "0 2 * * *")
    assert cron == [datetime(2013, 3, d, 2, tzinfo=UTC) for d in (1, 2, 3)]
    assert cutoff_series(at("2013-03-01T02:00:00Z"), at("2013-03-01T02:00:00Z"), "0 2 * * *") == [
        datetime(2013, 3, 1, 2, tzinfo=UTC)
    ]  # a cron time on the start is a cut-off


@pytest.mark.parametrize(
    ("start", "end", "every", "message"),
    [
        ("2013-03-02", "2013-03-01", "1d", "is before --from"),
        ("2013-03-01", "2013-03-02", "fortnightly", "neither a step"),
        ("2013-03-01", "2013-03-02", "0d", "at least 1"),
        ("1990-01-01", "2020-01-01", "1d", "more than 10,000 cut-offs"),
    ],
)
def test_a_bad_range_or_step_is_refused_with_the_reason(start, end, every, message):
    with pytest.raises(PipelineError, match=message):
        cutoff_series(at(start), at(end), every)
