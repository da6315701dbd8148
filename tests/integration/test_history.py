"""A year of history backfilled month by month through Airflow (`python -m pipeline backfill`):
cut-offs years in the past, distributions that shift in given months, a category that appears,
labels that land days after their rows. Every surface tells the same alert story.
"""

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import test_alerts
import yaml
from history import (
    SHIFTS,
    SPEC,
    STABLE,
    TABLE,
    UNSEEN,
    cutoffs,
    month_start,
    rows_before,
    seed_history,
)
from sklearn.metrics import roc_auc_score

from helpers import query
from pipeline import cli
from pipeline.datafiles.snapshots import read_snapshot_table
from pipeline.reports.summary import run_summary
from pipeline.spec import load_spec
from pipeline.warehouse.runs import fetch_run
from pipeline.warehouse.snapshots import recorded_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

webhook = test_alerts.webhook  # an HTTP server keeping each POST


@pytest.fixture
def history(warehouse, jobs, airflow_db, webhook, monkeypatch):
    """hist.events seeded, the history job's spec and (empty) suites, alerts to a webhook."""
    seed_history(warehouse)
    monkeypatch.setenv(
        "AIRFLOW_CONN_HISTORY_HOOK", f"http://127.0.0.1:{webhook.server_address[1]}/hook"
    )
    raw = {**SPEC, "alerts": {"webhook": {"connection": "history_hook"}}}
    (jobs / "history.yaml").write_text(yaml.safe_dump(raw))
    for kind in ("training", "scoring"):
        folder = jobs.parent / "expectations" / "history"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{kind}.json").write_text(json.dumps({"name": f"history.{kind}"}))
    return warehouse, load_spec(jobs / "history.yaml")


def published_runs(url: str) -> list[tuple[str, datetime]]:
    return query(
        url,
        "SELECT run_id, as_of FROM scoring.scoring_runs WHERE job = 'history'"
        " AND status = 'published' ORDER BY as_of",
    )


def drift_alerts(url: str, run_id: str) -> set[str]:
    rows = query(
        url,
        "SELECT subject FROM scoring.alerts WHERE run_id = %s AND kind = 'drift'",
        (run_id,),
    )
    return {subject for (subject,) in rows}


def summary_alerts(url: str, spec, run_id: str) -> list[str]:
    """The alert lines of the run's summary, as a person reads them."""
    lines = run_summary(url, spec, fetch_run(url, spec.name, run_id), 1.0)
    return [m.group(1) for line in lines if (m := re.match(r"  \[\w+\] (.*)$", line))]


def report_alerts(url: str, run_id: str) -> list[str]:
    """The alerts of the run's report banner."""
    [(uri,)] = query(
        url, "SELECT report_uri FROM scoring.scoring_runs WHERE run_id = %s", (run_id,)
    )
    page = Path(uri).read_text()
    banner = re.search(r'<div class="banner alert"[^>]*>(.*?)</div>', page, re.S)
    items = re.findall(r"<li>\[\w+\] (.*?)</li>", banner.group(1)) if banner else []
    return [html.unescape(item) for item in items]


def test_a_year_backfilled_monthly_tells_one_alert_story(history, webhook, capsys):
    url, spec = history
    first, last = cutoffs()[0], cutoffs()[-1]
    code = cli.main(
        ["backfill", "history", "--from", first.isoformat(), "--to", last.isoformat(),
         "--every", "1mo"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    runs = published_runs(url)
    assert [as_of for _, as_of in runs] == cutoffs()  # every cut-off, oldest first
    assert "12 published, 0 skipped, 0 failed" in printed
    assert f"shows as_of {last.isoformat()}" in printed
    [(latest,)] = query(url, "SELECT DISTINCT as_of FROM scoring.history_latest")
    assert latest == last

    # each run's snapshots: only rows before its as_of; training rows only labelled ones
    for run_id, as_of in runs:
        row = fetch_run(url, "history", run_id)
        for kind in ("scoring", "training"):
            snapshot = recorded_snapshot(
                url, "history", getattr(row, f"{kind}_snapshot_id"), None, kind, run_id
            )
            table = read_snapshot_table(snapshot.recorded_manifest, ["event_id", "updated_at"])
            stamps = table.column("updated_at").to_pylist()
            assert max(stamps) < as_of, (run_id, kind)
            if kind == "scoring":
                assert table.num_rows == rows_before(url, as_of)
            else:
                [(labelled,)] = query(
                    url,
                    f"SELECT count(*) FROM {TABLE} WHERE updated_at < %s AND labelled_at < %s",
                    (as_of, as_of),
                )
                assert table.num_rows == labelled

    # realised performance of the first run: a hand computation over the labels that came
    # after its cut-off (January's last days), from its stored scores
    first_run = runs[0][0]
    late = query(
        url,
        f"SELECT p.score, e.converted FROM scoring.history_predictions p JOIN {TABLE} e"
        " ON e.event_id = p.key WHERE p.run_id = %s AND e.labelled_at >= %s",
        (first_run, first),
    )
    [(value, labelled, eligible, trusted)] = query(
        url,
        "SELECT value, labelled, eligible, trusted FROM scoring.model_performance"
        " WHERE run_id = %s AND metric = 'roc_auc'",
        (first_run,),
    )
    truth = np.array([t for _, t in late])
    assert value == pytest.approx(roc_auc_score(truth, [s for s, _ in late]), rel=1e-9)
    assert labelled == eligible == len(late) and trusted

    # drift on the rows new since the previous cut-off: the shifted features alert in the first
    # month they move and never before; the stable ones never
    alerted = {as_of: drift_alerts(url, run_id) for run_id, as_of in runs}
    for as_of, features in alerted.items():
        assert not features & set(STABLE), (as_of, features)
    unseen_feature, _, unseen_month = UNSEEN
    moves = {unseen_feature: unseen_month, **{f: months[0] for f, months in SHIFTS.items()}}
    for feature, month in moves.items():
        first_seen = month_start(month + 1)  # the run whose new rows are that month's
        assert feature in alerted[first_seen], (feature, alerted[first_seen])
        assert all(feature not in found for at, found in alerted.items() if at < first_seen)
    populations = query(
        url,
        "SELECT DISTINCT population FROM scoring.drift_reports WHERE decides AND run_id <> %s",
        (first_run,),
    )
    assert populations == [("new",)]  # ~2,000 new rows a month: above min_new_rows

    # retrain.policy on_drift: the run after each alerting run retrains, the others do not
    decisions = query(
        url,
        "SELECT run_id, retrain FROM scoring.scoring_runs WHERE job = 'history' ORDER BY as_of",
    )
    for (previous, _), (run_id, decision) in zip(decisions, decisions[1:], strict=False):
        raised = query(
            url,
            "SELECT count(*) FROM scoring.alerts WHERE run_id = %s"
            " AND kind IN ('drift', 'performance')",
            (previous,),
        )[0][0]
        assert decision["due"] == bool(raised), (run_id, decision)
        if raised:
            assert decision["reason"].startswith(
                f"retrain.policy on_drift: alerts since run {previous}"
            )

    # one story: the alert rows, the summary, the report, the drift view and the webhook agree
    hooks = [hit["json"] for hit in webhook.received]
    for run_id, _ in runs:
        stored = [m for (m,) in query(
            url, "SELECT message FROM scoring.alerts WHERE run_id = %s ORDER BY id", (run_id,)
        )]  # fmt: skip
        assert summary_alerts(url, spec, run_id) == stored
        assert sorted(report_alerts(url, run_id)) == sorted(stored)
        viewed = set(query(
            url,
            "SELECT feature, statistic FROM scoring.history_drift WHERE run_id = %s AND alert",
            (run_id,),
        ))  # fmt: skip
        drifted = set(query(
            url,
            "SELECT subject, statistic FROM scoring.alerts WHERE run_id = %s AND kind = 'drift'",
            (run_id,),
        ))  # fmt: skip
        assert viewed == drifted
        sent = [line for h in hooks if h["run_id"] == run_id and h["what"] == "drift"
                for line in h["details"]]  # fmt: skip
        kept = [m for (m,) in query(
            url,
            "SELECT message FROM scoring.alerts WHERE run_id = %s AND kind = 'drift' ORDER BY id",
            (run_id,),
        )]  # fmt: skip
        assert sent == kept


def test_a_backfill_skips_published_cut_offs_and_stops_at_the_first_failure(history, capsys):
    url, spec = history
    feb, mar, apr = (month_start(m) for m in (2, 3, 4))
    assert (
        cli.main(["backfill", "history", "--from", feb.isoformat(), "--to", feb.isoformat()]) == 0
    )
    capsys.readouterr()
    # March's rows break the snapshot: a key repeated in a view would; here a NULL timestamp
    # cannot, so the table is made to hold a duplicate key through a view
    query(
        url,
        f"ALTER TABLE {TABLE} RENAME TO events_table;"
        " CREATE VIEW hist.events AS SELECT * FROM hist.events_table"
        " UNION ALL SELECT * FROM hist.events_table WHERE event_id = 3000",
    )
    code = cli.main(
        ["backfill", "history", "--from", feb.isoformat(), "--to", apr.isoformat(),
         "--every", "1mo"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 1
    lines = [line for line in printed.splitlines() if line.startswith(("2015-", "backfill "))]
    assert lines[1].startswith(f"{feb.isoformat()}  skipped    published by run")
    assert lines[2].startswith(f"{mar.isoformat()}  FAILED") and "duplicated" in lines[2]
    assert not any(line.startswith(apr.isoformat()) for line in lines)  # stopped at March
    assert "0 published, 1 skipped, 1 failed" in lines[-1]
    assert [as_of for _, as_of in published_runs(url)] == [feb]  # February's run intact


def test_a_cut_off_before_the_default_start_publishes_and_one_before_schedule_start_fails(
    history, jobs, capsys
):
    url, spec = history
    assert month_start(3).year < 2026  # years before any date the old fixed start allowed
    assert cli.main(["run", "history", "--as-of", month_start(3).isoformat()]) == 0
    assert [as_of for _, as_of in published_runs(url)] == [month_start(3)]
    capsys.readouterr()

    raw = yaml.safe_load((jobs / "history.yaml").read_text())
    raw["schedule"]["start"] = "2015-06-01"
    (jobs / "history.yaml").write_text(yaml.safe_dump(raw))
    assert cli.main(["run", "history", "--as-of", month_start(4).isoformat()]) == 2
    error = capsys.readouterr().err
    assert "before the DAG's start date 2015-06-01 (schedule.start" in error


def test_a_run_request_that_yields_no_run_is_an_error_with_its_reason(history, capsys):
    """Airflow makes no task for a logical date before the DAG's start date: the command says
    so before asking, and a DAG run that recorded no run of the job is an error too."""
    from pipeline.cli.jobs import recorded_run
    from pipeline.errors import PipelineError
    from pipeline.orchestration.dags import run_once

    url, spec = history
    before = datetime(1999, 6, 1, tzinfo=UTC)  # before the default schedule.start, 2000-01-01
    assert cli.main(["run", "history", "--as-of", before.isoformat()]) == 2
    assert "before the DAG's start date 2000-01-01" in capsys.readouterr().err

    state = run_once(spec.name, before, {"as_of": before.isoformat()})
    with pytest.raises(PipelineError, match="no run of the job was recorded"):
        recorded_run(url, spec.name, before, state)
    assert published_runs(url) == []


def test_suites_suggested_as_of_a_past_cut_off_profile_that_table_and_runs_says_none_yet(
    history, jobs, capsys
):
    url, spec = history
    assert cli.main(["runs", "history"]) == 0
    assert "history: no runs yet" in capsys.readouterr().out

    march = month_start(3)
    code = cli.main(
        ["suggest-expectations", "history", "--as-of", march.isoformat(), "--overwrite"]
    )
    assert code == 0, capsys.readouterr().err
    suites = jobs.parent / "expectations" / "history"
    scoring = json.loads((suites / "scoring.json").read_text())
    assert scoring["meta"]["rows_profiled"] == rows_before(url, march)
    channel = next(
        e["kwargs"]["value_set"]
        for e in scoring["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "channel"
    )
    assert UNSEEN[1] not in channel  # the category that appears in April is not in the suite
