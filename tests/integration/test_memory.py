"""Memory is a property CI guards: every stage of a whole run, on a table and one ten times
larger, each in a worker process of its own (the benchmark's runner); no streaming stage's
peak RSS may grow more than 1.25x. It measures memory, never wall time.

Validation is bounded by one column, not by the table: GX needs a whole column for an
expectation (uniqueness, a share of NULLs, a range with `mostly`), so each group of columns it
validates is held whole, with GX's masks and copies of it (about 80 bytes a row). Its peak may
grow by COLUMN_BYTES a row; holding every column at once would be about ten times that."""

import pytest

from bench.harness import stage_profile

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL, LARGE = 200_000, 2_000_000  # the small one fills every stage's batches already
GROWTH = 1.25
COLUMN_BYTES = 128


def test_no_stage_holds_memory_that_grows_with_the_table(warehouse, jobs):
    profile = stage_profile(warehouse, [SMALL, LARGE], train_rows=SMALL)
    small, large = profile[SMALL]["peak_rss_mib"], profile[LARGE]["peak_rss_mib"]
    assert set(small) == set(large) and "monitor" in large and "publish" in large
    grown = {
        stage: f"{small[stage]:.0f} -> {rss:.0f} MiB"
        for stage, rss in large.items()
        if rss > allowed(stage, small[stage])
    }
    assert not grown, grown


def allowed(stage: str, small_mib: float) -> float:
    """A stage's largest peak RSS at LARGE rows, given its peak at SMALL."""
    if stage.startswith("validate_"):
        return small_mib + COLUMN_BYTES * (LARGE - SMALL) / 2**20
    return GROWTH * small_mib
