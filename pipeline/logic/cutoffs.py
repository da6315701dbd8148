"""A run's cut-off (as_of): parsed, defaulted and checked. Pure: no I/O."""

from datetime import UTC, datetime, timedelta

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
