"""Job specs: good ones parse, bad ones fail naming the file and the key."""

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.errors import SpecError
from pipeline.spec import check_columns, find_spec, load_spec, load_specs, scan_specs

JOBS = Path(__file__).resolve().parents[2] / "dags" / "jobs"


def write_spec(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load((JOBS / "customer_churn.yaml").read_text())
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last)
        else:
            node[last] = value
    path = tmp_path / "my_job.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_specs_parse():
    specs = {s.name: s for s in load_specs(JOBS)}
    assert {"customer_churn", "delivery_delay"} <= set(specs)
    churn = specs["customer_churn"]
    assert churn.task == "classification"
    assert churn.primary_metric == "roc_auc"
    assert churn.features.all[:2] == ["tenure_months", "monthly_charges"]
    assert specs["delivery_delay"].primary_metric == "rmse"


def test_name_defaults_to_file_stem_and_defaults_apply(tmp_path):
    path = write_spec(tmp_path, scoring=None, schedule=None, retrain=None)
    spec = load_spec(path)
    assert spec.name == "my_job"
    assert spec.schedule.cron == "0 2 * * *"
    assert spec.scoring.partitions == 4
    assert spec.retrain.policy == "always"


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"sourse": {"table": "a.b"}}, "sourse: unknown key"),
        ({"model__seeed": 1}, "model.seeed: unknown key"),
        (
            {"source__table": "customers"},
            "source.table: 'customers' must be written as schema.table",
        ),
        ({"source__key": "Customer-ID"}, "source.key: 'Customer-ID' is not a valid identifier"),
        (
            {"features__numeric": ["x; drop table y"]},
            "features.numeric[0]: 'x; drop table y' is not a valid identifier",
        ),
        ({"task": "clustering"}, "task: Input should be 'classification' or 'regression'"),
        ({"model__estimator": "ridge"}, "'ridge' is not available for classification"),
        ({"model__primary_metric": "rmse"}, "'rmse' is not a classification metric"),
        ({"schedule__cron": "nightly"}, "schedule.cron: 'nightly' is not a 5-field cron"),
        ({"retrain": {"policy": "weekdays"}}, "needs a non-empty 'weekdays' list"),
        ({"features__boolean": ["customer_id"]}, "is the key, a timestamp or the target"),
        ({"schedule__timezone": "Mars/Olympus"}, "'Mars/Olympus' is not a time zone name"),
        ({"schedule__cron": "61 * * * *"}, "schedule.cron: '61 * * * *' is not a 5-field"),
        ({"schedule__start": "someday"}, "schedule.start: Input should be a valid date"),
        ({"target": None}, "target: Field required"),
        ({"governance": {"approval": "always"}}, "approvers: name the Airflow user ids"),
        (
            {"governance": {"approval": {"when": ["alert"], "approvers": ["a:b"]}}},
            "'a:b' is not an Airflow user id",
        ),
        (
            {"governance": {"approval": {"when": ["soon"], "approvers": ["a"]}}},
            "governance.approval.when",
        ),
        (
            {"governance": {"shadow_runs": 5}, "retention": {"keep_runs": 3}},
            "governance.shadow_runs: 5 is more than retention.keep_runs (3)",
        ),
    ],
)
def test_bad_spec_names_file_and_key(tmp_path, changes, fragment):
    path = write_spec(tmp_path, **changes)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_yaml_syntax_error_names_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("source: [unclosed\n")
    with pytest.raises(SpecError, match=r"broken\.yaml: not valid YAML"):
        load_spec(path)


def write_two_specs_named_same(folder: Path) -> None:
    for stem in ("a", "b"):
        raw = yaml.safe_load((JOBS / "delivery_delay.yaml").read_text())
        raw["name"] = "same"
        (folder / f"{stem}.yaml").write_text(yaml.safe_dump(raw))


def test_duplicate_job_names_are_rejected(tmp_path):
    write_two_specs_named_same(tmp_path)
    with pytest.raises(SpecError, match="job 'same' is defined twice"):
        load_specs(tmp_path)


def test_the_duplicate_file_is_the_one_reported(tmp_path):
    write_two_specs_named_same(tmp_path)
    specs, problems = scan_specs(tmp_path)
    assert [s.path for s in specs] == [str(tmp_path / "a.yaml")]
    assert list(problems) == [tmp_path / "b.yaml"]
    with pytest.raises(SpecError, match=r"b\.yaml: name: job 'same' is defined twice"):
        find_spec("same", tmp_path)


@pytest.fixture
def jobs_with_broken(tmp_path) -> Path:
    """The shipped specs, plus one file that is not YAML and one with an unknown key."""
    for path in JOBS.glob("*.yaml"):
        shutil.copy(path, tmp_path)
    (tmp_path / "broken_yaml.yaml").write_text("source: [unclosed\n")
    raw = yaml.safe_load((JOBS / "delivery_delay.yaml").read_text())
    raw |= {"name": "typo_job", "sourse": {"table": "a.b"}}
    (tmp_path / "invalid_spec.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path


def test_a_broken_file_does_not_hide_the_good_specs(jobs_with_broken):
    assert find_spec("customer_churn", jobs_with_broken).path == str(
        jobs_with_broken / "customer_churn.yaml"
    )
    specs, problems = scan_specs(jobs_with_broken)
    assert {s.name for s in specs} == {"customer_churn", "delivery_delay"}
    assert {p.name for p in problems} == {"broken_yaml.yaml", "invalid_spec.yaml"}
    assert "broken_yaml.yaml: not valid YAML" in str(
        problems[jobs_with_broken / "broken_yaml.yaml"]
    )
    assert "sourse: unknown key" in str(problems[jobs_with_broken / "invalid_spec.yaml"])
    with pytest.raises(SpecError) as err:
        load_specs(jobs_with_broken)
    assert "broken_yaml.yaml: not valid YAML" in str(err.value)
    assert "invalid_spec.yaml: invalid job spec" in str(err.value)


@pytest.mark.parametrize(
    ("job", "fragment"),
    [
        ("broken_yaml", r"broken_yaml\.yaml: not valid YAML"),  # by file stem
        ("invalid_spec", r"invalid_spec\.yaml: invalid job spec"),  # by file stem
        ("typo_job", r"invalid_spec\.yaml: invalid job spec"),  # by its name: key
    ],
)
def test_a_broken_job_raises_its_own_files_error(jobs_with_broken, job, fragment):
    with pytest.raises(SpecError, match=fragment):
        find_spec(job, jobs_with_broken)


def test_an_unknown_job_lists_known_jobs_and_broken_files(jobs_with_broken):
    with pytest.raises(SpecError) as err:
        find_spec("nope", jobs_with_broken)
    message = str(err.value)
    assert "no job named 'nope'" in message
    assert "known jobs: ['customer_churn', 'delivery_delay']" in message
    assert "broken_yaml.yaml" in message and "invalid_spec.yaml" in message


def test_missing_column_names_the_key():
    spec = load_spec(JOBS / "customer_churn.yaml")
    columns = {c: "integer" for c in ["customer_id", "churned", *spec.features.all]}
    columns |= {"updated_at": "timestamp with time zone", "plan": "text", "region": "text"}
    columns |= {"payment_method": "text"} | {c: "boolean" for c in spec.features.boolean}
    check_columns(spec, columns)  # all present with fitting types: no error
    del columns["region"]
    with pytest.raises(SpecError) as err:
        check_columns(spec, columns)
    message = str(err.value)
    assert f"{JOBS / 'customer_churn.yaml'}: features.categorical[1]" in message
    assert "column 'region' not found in table demo.customers" in message


@pytest.mark.parametrize(
    ("column", "pg_type", "fragment"),
    [
        ("monthly_charges", "text", "features.numeric[1]: column demo.customers.monthly_charges"),
        ("autopay", "integer", "features.boolean[2]: column demo.customers.autopay"),
        ("updated_at", "text", "source.timestamp: column demo.customers.updated_at"),
    ],
)
def test_a_column_of_the_wrong_type_names_the_key(column, pg_type, fragment):
    spec = load_spec(JOBS / "customer_churn.yaml")
    columns = {c: "double precision" for c in ["customer_id", "churned", *spec.features.numeric]}
    columns |= {c: "text" for c in spec.features.categorical}
    columns |= {c: "boolean" for c in spec.features.boolean}
    columns |= {"updated_at": "timestamp with time zone", column: pg_type}
    with pytest.raises(SpecError) as err:
        check_columns(spec, columns)
    assert fragment in str(err.value) and f"has type '{pg_type}'" in str(err.value)
