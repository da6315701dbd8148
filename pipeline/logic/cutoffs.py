"""A run's cut-off (as_of): parsed, defaulted and checked, and a backfill's series of them.
Pure: no I/O."""

import re
from datetime import UTC, datetime, timedelta

from croniter import croniter
from dateutil.relativedelta import relativedelta

from pipeline.errors import PipelineError

CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of this clock an as_of may be


def parse_timestamp(value: str, what: str = "as_of") -> datetime:
    """An ISO-8601 timestamp; naive values are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PipelineError(
            f"{what}: {value!r} is not an ISO-8601 timestamp (e.g. 2026-11-01T02:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def resolve_as_of(param: str | None, logical_date: str | None, run_after: str) -> datetime:
    """The run's cut-off: the `as_of` trigger parameter, else the logical date, else run_after.

    A cut-off in the future is refused: that run would stay the newest published one, and
    analysts would see it instead of every later run until its date came.
    """
    as_of = parse_timestamp(param) if param else parse_timestamp(logical_date or run_after)
    check_not_future(as_of)
    return as_of.astimezone(UTC)


def check_not_future(as_of: datetime) -> None:
    """Refuse a cut-off later than now (beyond CLOCK_SKEW)."""
    now = datetime.now(UTC)
    if as_of > now + CLOCK_SKEW:
        raise PipelineError(
            f"as_of {as_of.isoformat()} is in the future (now {now.isoformat(timespec='seconds')})"
            ": a snapshot can only hold rows that exist; give a cut-off up to now"
        )


STEPS = {"d": "days", "w": "weeks", "mo": "months"}
MAX_CUTOFFS = 10_000


def cutoff_series(start: datetime, end: datetime, every: str) -> list[datetime]:
    """The cut-offs of a backfill, oldest first: `start`, then every `every` up to `end`
    (inclusive). `every` is a step (`1d`, `7d`, `1w`, `1mo`, `3mo`) or a 5-field cron
    expression, read in UTC (then the cut-offs are its times between `start` and `end`)."""
    if end < start:
        raise PipelineError(
            f"backfill: --to {end.isoformat()} is before --from {start.isoformat()}"
        )
    step = re.fullmatch(r"(\d+)(d|w|mo)", every.strip())
    if step:
        count = int(step.group(1))
        if count < 1:
            raise PipelineError(f"backfill: --every {every!r}: the step must be at least 1")
        delta = relativedelta(**{STEPS[step.group(2)]: count})
        series: list[datetime] = []
        while len(series) <= MAX_CUTOFFS and start + delta * len(series) <= end:
            series.append(start + delta * len(series))
    elif croniter.is_valid(every):
        times = croniter(every, start.astimezone(UTC) - timedelta(microseconds=1))
        series = []
        while len(series) <= MAX_CUTOFFS and (at := times.get_next(datetime)) <= end:
            series.append(at.astimezone(UTC))
    else:
        raise PipelineError(
            f"backfill: --every {every!r} is neither a step (1d, 1w, 1mo, 3mo) nor a 5-field "
            "cron expression"
        )
    if len(series) > MAX_CUTOFFS:
        raise PipelineError(f"backfill: more than {MAX_CUTOFFS:,} cut-offs; take a longer step")
    return series
