"""The asset URIs lineage names: tables by server and database without a login, files under a
local root as file:// URIs, object storage as it is; each stage's reads and writes."""

from pathlib import Path

from pipeline.orchestration.lineage import file_uri, stage_lineage, table_uri
from pipeline.spec import load_spec

PROJECT = Path(__file__).resolve().parents[2]

URL = "postgresql://nightly:s3cret@db.internal:6432/warehouse?sslmode=require"


def test_a_table_is_named_by_server_and_database_never_by_login():
    assert (
        table_uri(URL, "demo.deliveries") == "postgres://db.internal:6432/warehouse/demo/deliveries"
    )
    assert (
        table_uri("postgresql:///warehouse", "t") == "postgres://localhost:5432/warehouse/public/t"
    )


def test_files_are_uris():
    assert file_uri("/data/snapshots/a/data.parquet") == "file:///data/snapshots/a/data.parquet"
    assert file_uri("s3://scoring/data/a.parquet") == "s3://scoring/data/a.parquet"


def test_each_stage_names_what_it_read_and_wrote():
    spec = load_spec(PROJECT / "dags" / "jobs" / "delivery_delay.yaml")
    source = "postgres://db.internal:6432/warehouse/demo/deliveries"
    snap = {"uri": "s3://b/p/snapshots/x/data.parquet", "source_table": "demo.deliveries"}
    assert stage_lineage("snapshot_scoring", spec, URL, {}, snap) == ([source], [snap["uri"]])
    model = {"artifact_uri": "s3://b/p/models/delivery_delay/v0001/model.skops"}
    part = {"uri": "s3://b/p/runs/delivery_delay/r/predictions/part-00000.parquet"}
    inputs = {"snapshot_scoring": snap, "register": model}
    assert stage_lineage("score", spec, URL, inputs, part) == (
        [snap["uri"], model["artifact_uri"]],
        [part["uri"]],
    )
    published = stage_lineage("publish", spec, URL, {"score": [part]}, {"rows": 1})
    table = "postgres://db.internal:6432/warehouse/scoring/delivery_delay_predictions"
    assert published == ([part["uri"]], [table])
    assert stage_lineage("monitor", spec, URL, inputs, {"features": 3}) == ([], [])
    assert "s3cret" not in repr(published)
