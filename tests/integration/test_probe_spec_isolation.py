"""Probe: one broken job spec hides no other, whatever breaks it, and `check` says which."""

import logging

import pytest
import yaml

from pipeline import cli
from pipeline.local.demo_data import seed_table
from pipeline.orchestration import dags

pytestmark = pytest.mark.integration


def break_timezone(jobs, name: str = "delivery_delay") -> None:
    path = jobs / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["schedule"] = {"cron": "0 2 * * *", "timezone": "Mars/Olympus"}
    path.write_text(yaml.safe_dump(raw))


def test_a_bad_timezone_fails_check_and_leaves_the_other_dags(warehouse, jobs, capsys):
    seed_table(warehouse, "demo.customers", 500)
    break_timezone(jobs)
    assert cli.main(["check"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL" in printed and "delivery_delay.yaml" in printed
    assert "schedule.timezone: 'Mars/Olympus' is not a time zone name" in printed
    assert "ok   customer_churn" in printed
    assert set(dags.build_dags(jobs)) == {"customer_churn"}


def test_any_error_building_one_dag_hides_no_other(jobs, monkeypatch, caplog):
    """Whatever fails for one file (here an error Airflow might raise building its DAG), the
    other files still become DAGs, and the log names the file and the error."""
    build = dags.build_dag

    def failing(spec, path):
        if spec.name == "customer_churn":
            raise RuntimeError("a timetable Airflow refused")
        return build(spec, path)

    monkeypatch.setattr(dags, "build_dag", failing)
    with caplog.at_level(logging.ERROR, logger="pipeline.orchestration.dags"):
        built = dags.build_dags(jobs)
    assert set(built) == {"delivery_delay"}
    assert any(
        "customer_churn.yaml" in r.getMessage() and "a timetable Airflow refused" in r.getMessage()
        for r in caplog.records
    )


def test_the_dag_folder_imports_cleanly_beside_a_broken_spec(jobs, tmp_path, monkeypatch):
    """Airflow's own DagBag over the project's DAG file, with one spec broken and one file that
    is not YAML at all: no import error, every other job a DAG."""
    from airflow.dag_processing.dagbag import DagBag

    break_timezone(jobs)
    (jobs / "garbage.yaml").write_text("{not: [yaml")
    raw = yaml.safe_load((jobs / "customer_churn.yaml").read_text())
    (jobs / "copy.yaml").write_text(yaml.safe_dump({**raw, "name": "customer_churn"}))  # twice
    bag = DagBag(dag_folder=str(dags.__file__).replace("pipeline/orchestration/dags.py", "dags"))
    assert bag.import_errors == {}
    assert set(bag.dags) == {"customer_churn"}
