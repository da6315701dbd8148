"""The data root on object storage, against a real S3 server (SeaweedFS on 127.0.0.1): two
runs, `reproduce`, `prune` and an erasure work there; every stored URI is canonical (`s3://bucket/...`,
no endpoint, no key); the UI plugin serves the run's report and Data Docs from the bucket;
a root the keys may not write, or a bucket that does not exist, fails at once with one
message naming it."""

import re
from datetime import timedelta

import pyarrow.parquet as pq
import pytest

from helpers import S3_KEYS, Links, plugin_client, query, run_stages
from pipeline.cli.jobs import check_data_root
from pipeline.datafiles.root import DataRoot
from pipeline.errors import PipelineError
from pipeline.faults import explain_permanent
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.maintenance.reproduce import reproduce_run
from pipeline.maintenance.retention import prune_snapshots
from pipeline.spec import load_spec
from pipeline.stages.erasure import job_parquet_files, process_erasures, request_erasure
from pipeline.stages.snapshot import take_snapshot

pytestmark = pytest.mark.integration

ROWS = 2_000
STORED_URIS = """
    SELECT uri FROM scoring.snapshots
    UNION ALL SELECT artifact_uri FROM scoring.model_versions
    UNION ALL SELECT result_uri FROM scoring.validation_results
    UNION ALL SELECT docs_uri FROM scoring.validation_results
    UNION ALL SELECT report_uri FROM scoring.scoring_runs
"""


def test_runs_reproduce_prune_and_pages_on_object_storage(warehouse, s3_root, jobs):
    url = warehouse
    seed_table(url, "demo.deliveries", ROWS)
    spec = load_spec(jobs / "delivery_delay.yaml")
    as_of = demo_as_of()
    run_stages(url, spec, as_of - timedelta(days=1), "run-1")  # the first model
    run_stages(url, spec, as_of, "run-2")  # a candidate gated against it

    uris = [uri for (uri,) in query(url, STORED_URIS) if uri]
    assert len(uris) >= 10, uris
    for uri in uris:
        assert uri.startswith(f"{s3_root}/"), uri
        assert not re.search(r"[?&]|endpoint|secret|admin|127\.0\.0\.1", uri), uri

    reproduced = reproduce_run(url, spec.name, "run-2")
    assert reproduced.exact and reproduced.compared == ROWS, reproduced.differences

    ui = plugin_client(logged_in=True)
    page = ui.get("/").text
    rows = dict(re.findall(r'<code class="run">(run-\d)</code>(.*?)</tr>', page))
    assert '">report</a>' in rows["run-2"] and '">scoring</a>' in rows["run-2"], page
    links = Links()
    links.feed(page)
    for href in links.hrefs:
        served = ui.get(f"/{href}")
        assert served.status_code == 200, (href, served.status_code)
    report = ui.get(f"/{next(h for h in links.hrefs if h.endswith('report.html'))}").text
    assert "run-2" in report and "delivery_delay" in report

    # a snapshot no run or model points to leaves the bucket; those runs use stay
    orphan = take_snapshot(spec, "scoring", as_of - timedelta(days=2), url)
    root = DataRoot()
    assert root.exists(root.path_of(orphan.uri))
    pruned = prune_snapshots(url, spec.name, days=0, now=as_of + timedelta(days=400))
    assert pruned == [orphan.uri]
    assert not root.exists(root.path_of(orphan.uri))
    kept = [u for (u,) in query(url, "SELECT uri FROM scoring.snapshots")]
    assert kept and all(root.exists(root.path_of(u)) for u in kept)
    assert reproduce_run(url, spec.name, "run-2").exact

    # an erasure rewrites the bucket's files: no erased key is left in any, nor a stray copy
    erased = [
        str(k) for (k,) in query(url, "SELECT key FROM scoring.delivery_delay_latest LIMIT 2")
    ]
    query(url, "DELETE FROM demo.deliveries WHERE delivery_id::text = ANY(%s)", (erased,))
    request_erasure(url, spec.name, erased, "test on object storage")
    done = process_erasures(url, spec, by="test")
    assert done.files and all(f.path.startswith(root.base.strip("/")) for f in done.files)
    for path in job_parquet_files(root, spec.name):
        with root.open_input(path) as src:
            table = pq.read_table(src)
        assert not set(erased) & set(map(str, table.column(0).to_pylist())), path
    assert not root.remove_incoming("snapshots", spec.name)
    result = reproduce_run(url, spec.name, "run-2")
    assert result.exact and result.erased_keys == 2 and result.matched == ROWS - 2


def test_a_root_the_keys_may_not_write_fails_at_once_naming_it(s3_root, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "reader")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_KEYS["reader"])
    with pytest.raises(OSError) as raised:
        DataRoot().probe()
    message = explain_permanent(raised.value)
    assert message and message.startswith("object storage refused s3://scoring/"), message
    assert "ACCESS_DENIED" in message and "retrying will not help" in message
    assert check_data_root() == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL data root {s3_root}: object storage refused"), out
    assert S3_KEYS["reader"] not in out


def test_a_missing_bucket_is_named(s3_root, monkeypatch, capsys):
    monkeypatch.setenv("SCORING_DATA_ROOT", "s3://no-such-bucket/scoring")
    assert check_data_root() == 1
    out = capsys.readouterr().out
    assert (
        "FAIL data root s3://no-such-bucket/scoring: object storage: bucket no-such-bucket " in out
    )
    assert "allow_bucket_creation" not in out
    monkeypatch.setenv("SCORING_DATA_ROOT", s3_root)
    assert check_data_root() == 0
    assert capsys.readouterr().out == f"ok   data root {s3_root}: reachable and writable\n"


def test_a_root_given_with_its_endpoint_is_shown_without_it(s3_root, s3_server, monkeypatch):
    endpoint = s3_server.removeprefix("http://")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    root = DataRoot(f"{s3_root}?endpoint_override={endpoint}&scheme=http")
    path = root.path("runs", "page.json")
    root.write_json(path, {"x": 1})
    assert root.uri(path) == f"{s3_root}/runs/page.json"
    assert root.read_json(root.path_of(root.uri(path))) == {"x": 1}
    assert root.relative(root.uri(path)) == "runs/page.json"


def test_a_file_recorded_under_a_local_root_is_named_under_a_bucket_root(s3_root):
    with pytest.raises(PipelineError, match="was recorded under another data root") as raised:
        DataRoot().path_of("/srv/data/models/job/v0001/model.skops")
    assert f"SCORING_DATA_ROOT={s3_root}" in str(raised.value)
