"""Memory is a property CI guards: every stage of a whole run, on a table and one ten times
larger, each in a worker process of its own (the benchmark's runner); no stage's peak RSS may
grow more than 1.25x. It measures memory, never wall time.

Validation runs the suites' row-wise expectations `validation.chunk_rows` rows at a time; the
job here sets it to the small table's size, so both runs hold chunks of the same size."""

import pytest

from bench.harness import stage_profile

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL, LARGE = 200_000, 2_000_000  # the small one fills every stage's batches already
GROWTH = 1.25


def test_no_stage_holds_memory_that_grows_with_the_table(warehouse, jobs):
    profile = stage_profile(warehouse, [SMALL, LARGE], train_rows=SMALL, chunk_rows=SMALL)
    small, large = profile[SMALL]["peak_rss_mib"], profile[LARGE]["peak_rss_mib"]
    assert set(small) == set(large) and "monitor" in large and "publish" in large
    grown = {
        stage: f"{small[stage]:.0f} -> {rss:.0f} MiB"
        for stage, rss in large.items()
        if rss > GROWTH * small[stage]
    }
    assert not grown, grown
