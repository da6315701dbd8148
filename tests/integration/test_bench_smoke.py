"""The benchmark harness at a tiny size: every arm runs and agrees. Wall time is never asserted."""

import json

import pytest

from bench.harness import run_bench

pytestmark = pytest.mark.integration

ROWS = 2_000


def test_bench_arms_agree_and_report(warehouse, jobs, tmp_path):
    path = tmp_path / "bench.json"
    report = run_bench(
        warehouse,
        sizes=[ROWS],
        workers=[1, 2],
        naive_max_rows=ROWS,
        train_rows=ROWS,
        json_path=str(path),
    )

    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    arms = {a["arm"]: a for a in report["arms"]}
    assert set(arms) == {
        "ours/1w",
        "ours/2w",
        "copy_out",
        "predict",
        "copy_in",
        "naive",
        "validate",
    }
    assert {a["rows"] for a in arms.values()} == {ROWS}
    assert arms["validate"]["expectations"] > 10
    checksums = {name: a["checksum"] for name, a in arms.items() if "checksum" in a}
    assert len(set(checksums.values())) == 1, checksums
    summary = report["results"][str(ROWS)]
    for key in ("ours_s", "floor_s", "naive_s", "ratio_to_floor", "speedup_vs_naive"):
        assert summary[key] > 0
    assert summary["peak_rss_mib"] > 0
    assert report["machine"]["cpus"] >= 1 and report["libraries"]["pyarrow"]
