"""`python -m pipeline check` reports every spec file: a broken one fails alone."""

import pytest

from pipeline.ops.cli import main
from pipeline.ops.demo_data import seed_table

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
