"""`check` reports every spec file (a broken one fails alone) or only the jobs named; commands
create the scoring schema when it is missing; a failed snapshot leaves no file."""

import os
from pathlib import Path

import pytest

from helpers import query
from pipeline.cli import main
from pipeline.local.demo_data import demo_as_of, seed_table

pytestmark = pytest.mark.integration


def test_check_reports_good_jobs_and_the_broken_file(warehouse, jobs, capsys):
    seed_table(warehouse, "demo.customers", 500)
    seed_table(warehouse, "demo.deliveries", 500)
    (jobs / "zz_broken.yaml").write_text("source: [unclosed\n")

    assert main(["check"]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("ok   customer_churn: ") for line in lines), lines
    assert any(line.startswith("ok   delivery_delay: ") for line in lines), lines
    assert any(line.startswith("FAIL ") and "zz_broken.yaml" in line for line in lines), lines


def test_check_passes_when_every_spec_is_good(warehouse, jobs, capsys):
    seed_table(warehouse, "demo.customers", 500)
    seed_table(warehouse, "demo.deliveries", 500)

    assert main(["check"]) == 0
    assert "FAIL" not in capsys.readouterr().out


def test_check_of_named_jobs_ignores_the_others(warehouse, jobs, capsys):
    seed_table(warehouse, "demo.deliveries", 500)  # demo.customers is missing

    assert main(["check", "delivery_delay"]) == 0
    assert capsys.readouterr().out.startswith("ok   delivery_delay: ")
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL customer_churn: table demo.customers does not exist" in out
    assert main(["check", "no_such_job"]) == 1
    assert "FAIL no_such_job: no job of that name" in capsys.readouterr().out


def test_commands_create_the_schema_on_a_fresh_database(warehouse, jobs, capsys):
    """suggest-expectations on a database that never saw `migrate`: it migrates first."""
    query(warehouse, "DROP SCHEMA scoring CASCADE")
    seed_table(warehouse, "demo.deliveries", 500)

    assert main(["suggest-expectations", "delivery_delay", "--overwrite"]) == 0
    assert "wrote " in capsys.readouterr().out
    assert query(warehouse, "SELECT count(*) FROM scoring.snapshots") == [(2,)]


def test_a_snapshot_that_fails_midway_leaves_no_file(warehouse, jobs):
    from pipeline.errors import PipelineError
    from pipeline.spec import load_spec
    from pipeline.stages.snapshot import take_snapshot

    seed_table(warehouse, "demo.deliveries", 2_000)
    query(warehouse, "ALTER TABLE demo.deliveries RENAME TO deliveries_raw")
    query(  # the source fails partway through the COPY: a division by zero past key 1500
        warehouse,
        "CREATE VIEW demo.deliveries AS SELECT delivery_id, updated_at,"
        " distance_km / CASE WHEN delivery_id > 1500 THEN 0 ELSE 1 END AS distance_km,"
        " items, courier_type, weather, is_rush_hour, minutes_late FROM demo.deliveries_raw",
    )
    spec = load_spec(jobs / "delivery_delay.yaml")
    with pytest.raises(PipelineError, match="division by zero"):
        take_snapshot(spec, "scoring", demo_as_of(), warehouse)
    root = Path(os.environ["SCORING_DATA_ROOT"])
    assert not root.exists() or [p for p in root.rglob("*") if p.is_file()] == []
