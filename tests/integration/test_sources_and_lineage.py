"""A view as a source (derived target, no SQL in the YAML), unique keys at snapshot time, and
lineage that names the run's own snapshot files, not others with the same bytes."""

import logging
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from helpers import query, run_stages
from pipeline.cli import main
from pipeline.errors import DataValidationError
from pipeline.maintenance.lineage import format_lineage, key_lineage
from pipeline.maintenance.reproduce import reproduce_run
from pipeline.spec import load_spec
from pipeline.stages.snapshot import take_snapshot
from pipeline.warehouse import db, sources

pytestmark = pytest.mark.integration

JOB = "lab_affairs"
ROWS = 2_000
AS_OF = datetime.now(UTC) - timedelta(hours=1)  # after every row's timestamp, before now


@pytest.fixture
def lab(warehouse, jobs):
    """A schema of its own holding `raw`: rows updated two days ago, a count to derive from."""
    schema = f"lab_{uuid.uuid4().hex[:8]}"
    query(
        warehouse,
        f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.raw AS"
        " SELECT g AS id, now() - interval '2 days' AS updated_at, 20 + g % 45 AS age,"
        " (ARRAY['n', 's', 'e', 'w'])[1 + g % 4] AS region,"
        " CASE WHEN g % 45 > 20 THEN g % 3 ELSE (g % 7) / 6 END AS affairs"
        f" FROM generate_series(1, {ROWS}) AS g",
    )
    spec = {
        "source": {"table": f"{schema}.affairs", "key": "id", "timestamp": "updated_at"},
        "features": {"numeric": ["age"], "categorical": ["region"]},
        "target": "had_affair",
        "task": "classification",
    }
    (jobs / f"{JOB}.yaml").write_text(yaml.safe_dump(spec))
    yield warehouse, schema, load_spec(jobs / f"{JOB}.yaml")
    query(warehouse, f"DROP SCHEMA {schema} CASCADE")


def derived_view(url: str, schema: str, duplicated: tuple[int, ...] = ()) -> None:
    """`affairs`: raw plus the derived target; rows with ids in `duplicated` twice."""
    extra = (
        f" UNION ALL SELECT *, affairs > 0 FROM {schema}.raw WHERE id IN {duplicated}"
        if duplicated
        else ""
    )
    query(
        url,
        f"CREATE VIEW {schema}.affairs AS SELECT *, affairs > 0 AS had_affair FROM {schema}.raw"
        + extra,
    )


def files_under(root: str) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


def test_a_view_as_source_runs_end_to_end(lab, capsys):
    url, schema, spec = lab
    derived_view(url, schema)
    assert main(["suggest-expectations", JOB]) == 0
    assert main(["check", JOB]) == 0
    assert f"ok   {JOB}: {schema}.affairs" in capsys.readouterr().out

    result = run_stages(url, spec, AS_OF, "run-1")

    assert result["publish"]["rows"] == ROWS
    assert query(url, f"SELECT count(*) FROM scoring.{spec.latest_view}") == [(ROWS,)]
    assert query(
        url,
        "SELECT count(*), min(scoring_snapshot_uri), max(scoring_snapshot_uri),"
        f" min(training_snapshot_uri) FROM scoring.{spec.lineage_view}",
    ) == [
        (
            ROWS,
            result["snapshot_scoring"]["uri"],
            result["snapshot_scoring"]["uri"],
            result["snapshot_training"]["uri"],
        )
    ]
    reproduction = reproduce_run(url, JOB, "latest")
    assert reproduction.exact and reproduction.matched == ROWS

    query(url, f"CREATE MATERIALIZED VIEW {schema}.frozen AS SELECT * FROM {schema}.affairs")
    with db.transaction(url) as conn:
        assert sources.table_columns(conn, f"{schema}.frozen") == sources.table_columns(
            conn, f"{schema}.affairs"
        )


def test_a_duplicated_key_in_a_view_fails_the_snapshot_and_leaves_no_file(lab):
    url, schema, spec = lab
    derived_view(url, schema, duplicated=(7, 8, 1500))

    with pytest.raises(DataValidationError) as failure:
        take_snapshot(spec, "scoring", AS_OF, url)

    message = str(failure.value)
    assert f"job {JOB}" in message and f"source {schema}.affairs" in message
    assert "3 duplicated value(s) of its key column id" in message
    assert "e.g. [7, 8, 1500]" in message
    assert files_under(os.environ["SCORING_DATA_ROOT"]) == []
    assert query(url, "SELECT count(*) FROM scoring.snapshots") == [(0,)]


def test_lineage_and_reproduce_name_the_runs_own_snapshots(lab, caplog):
    url, schema, spec = lab
    derived_view(url, schema)
    assert main(["suggest-expectations", JOB]) == 0  # snapshots with the run's bytes, elsewhere
    result = run_stages(url, spec, AS_OF, "run-1")
    assert main(["suggest-expectations", JOB, "--overwrite"]) == 0  # and after the run
    training, scoring = result["snapshot_training"], result["snapshot_scoring"]
    assert query(
        url,
        "SELECT kind, count(DISTINCT uri) FROM scoring.snapshots"
        " WHERE sha256 IN (%s, %s) GROUP BY kind ORDER BY kind",
        (scoring["sha256"], training["sha256"]),
    ) == [("scoring", 3), ("training", 3)]

    assert query(
        url,
        "SELECT training_snapshot_id, scoring_snapshot_id FROM scoring.scoring_runs"
        " WHERE run_id = 'run-1'",
    ) == [(training["snapshot_id"], scoring["snapshot_id"])]
    assert query(url, "SELECT training_snapshot_id FROM scoring.model_versions") == [
        (training["snapshot_id"],)
    ]
    assert query(
        url,
        "SELECT DISTINCT scoring_snapshot_uri, training_snapshot_uri"
        f" FROM scoring.{spec.lineage_view}",
    ) == [(scoring["uri"], training["uri"])]
    text = format_lineage(spec, key_lineage(url, spec, "7"))
    assert scoring["uri"] in text and training["uri"] in text

    with caplog.at_level(logging.INFO, logger="pipeline.maintenance.reproduce"):
        assert reproduce_run(url, JOB, "run-1").exact
    assert f"model v1 of {JOB} from snapshot {training['uri']}" in caplog.text
    assert f"run run-1 of {JOB} from snapshot {scoring['uri']}" in caplog.text

    # rows recorded before snapshot ids: found by sha256, the same kind and as_of first
    query(
        url,
        "UPDATE scoring.scoring_runs SET training_snapshot_id = NULL, scoring_snapshot_id = NULL;"
        " UPDATE scoring.model_versions SET training_snapshot_id = NULL",
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.stages.snapshot"):
        row = key_lineage(url, spec, "7")
    assert (row["scoring_snapshot_uri"], row["training_snapshot_uri"]) == (
        scoring["uri"],
        training["uri"],
    )
    assert "run run-1 of lab_affairs was recorded before snapshot ids" in caplog.text
