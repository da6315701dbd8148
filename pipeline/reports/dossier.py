"""An audit dossier per model version (`python -m pipeline audit <job> [--version N]`): what a
regulated team shows for a model, as one self-contained HTML page with its JSON beside it.

Every figure is read from the stored records, nothing is recomputed: the version's row of
scoring.model_versions (the gate's decision with both models' metrics on the same holdout,
the artifact's sha256, code and library versions, erasures), the snapshot it learned from
(scoring.snapshots and its manifest: query, as_of, rows, hashes), the validations of the run
that fitted it, every run that scored with it (rows, code, spec and suites hashes), its
realised performance since, and its model card.
"""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from pipeline.contracts import plain_json
from pipeline.datafiles.root import DataRoot
from pipeline.errors import PipelineError
from pipeline.model.files import COMPANIONS, companion_path
from pipeline.reports.html import (
    badge,
    esc,
    fmt_int,
    fmt_metric,
    fmt_time,
    markdown_html,
    page,
    table,
)
from pipeline.warehouse.models import ModelVersion, fetch_version
from pipeline.warehouse.monitoring import performance_of_job
from pipeline.warehouse.runs import RunRow, fetch_run, runs_of_model
from pipeline.warehouse.snapshots import SnapshotRow, recorded_snapshot
from pipeline.warehouse.validations import validations_of_run

NOT_RECORDED = "none recorded"


@dataclass(frozen=True)
class Dossier:
    """The facts of one model version, as plain JSON (`facts`), and the page drawn from them."""

    facts: dict

    @property
    def html(self) -> str:
        return render_dossier(self.facts)


def gather_dossier(url: str, job: str, version: int | None = None) -> Dossier:
    """The dossier of `version` (default: the champion) from the stored records."""
    model = fetch_version(url, job, version, None if version else "champion")
    if model is None:
        which = f"version {version}" if version else "a champion"
        raise PipelineError(f"job {job}: no model {which} in scoring.model_versions")
    fitted_by = fetch_run(url, job, model.run_id)
    snapshot = recorded_snapshot(
        url,
        job,
        model.training_snapshot_id,
        model.training_snapshot_sha256,
        "training",
        f"model v{model.version}",
        model_version=model.version,
    )
    performance = [p for p in performance_of_job(url, job) if p.model_version == model.version]
    facts = {
        "job": job,
        "version": model.version,
        "generated_at": datetime.now(UTC),
        "model": model_facts(model),
        "training_data": snapshot_facts(snapshot),
        "validation": [asdict(v) for v in validations_of_run(url, job, model.run_id)],
        "gate": gate_facts(model, fitted_by),
        "approval": approval_facts(model),
        "shadow": shadow_facts(model),
        "fitted_by": run_facts(fitted_by) if fitted_by else None,
        "runs": [run_facts(run) for run in runs_of_model(url, job, model.version)],
        "realised_performance": [asdict(p) for p in performance],
        "model_card": model_card(model),
    }
    return Dossier(plain_json(facts))


def model_facts(model: ModelVersion) -> dict:
    keep = (
        "status", "run_id", "created_at", "promoted_at", "estimator", "params", "primary_metric",
        "artifact_uri", "artifact_sha256", "code_version", "library_versions", "erased_rows",
        "erasure_flagged_at",
    )  # fmt: skip
    return {name: getattr(model, name) for name in keep}


def snapshot_facts(row: SnapshotRow | None) -> dict | None:
    """The training snapshot as recorded: its row and what its manifest says of it."""
    if row is None:
        return None
    manifest = row.manifest or {}
    return {
        "snapshot_id": row.id,
        "sha256": row.sha256,
        "original_sha256": manifest.get("original_sha256"),
        "as_of": row.as_of,
        "row_count": row.row_count,
        "source_table": manifest.get("source_table"),
        "query": manifest.get("query"),
        "uri": row.uri,
        "schema": manifest.get("schema"),
        "erasures": manifest.get("erasures") or [],
    }


def gate_facts(model: ModelVersion, fitted_by: RunRow | None) -> dict:
    """The gate's decision: both models' metrics on the candidate's holdout and the margin the
    run's spec set."""
    spec_model = ((fitted_by.spec if fitted_by else None) or {}).get("model") or {}
    return {
        "primary_metric": model.primary_metric,
        "candidate_metrics": model.metrics,
        "champion_version": model.champion_version,
        "champion_metrics": model.champion_metrics,
        "promotion_margin": spec_model.get("promotion_margin"),
        "forced": model.forced,
        "decision_reason": model.decision_reason,
    }


def run_facts(run: RunRow) -> dict:
    return {
        "run_id": run.run_id,
        "as_of": run.as_of,
        "status": run.status,
        "scope": (run.scope or {}).get("mode", "full"),
        "rows_scored": run.rows_scored,
        "published_at": run.published_at,
        "code_version": run.code_version,
        "spec_sha256": run.spec_sha256,
        "suites_sha256": run.suites_sha256,
        "training_snapshot_sha256": run.training_snapshot_sha256,
        "scoring_snapshot_sha256": run.scoring_snapshot_sha256,
    }


def model_card(model: ModelVersion) -> str | None:
    """MODEL_CARD.md beside the artifact, None if it is gone."""
    root = DataRoot()
    path = companion_path(root, model.artifact_uri, COMPANIONS[1])
    return root.read_bytes(path).decode() if root.exists(path) else None


def render_dossier(facts: dict) -> str:
    """The dossier as one HTML page (styles inline, no script, no external resource)."""
    model, gate = facts["model"], facts["gate"]
    title = f"{facts['job']} model v{facts['version']}: audit dossier"
    sections = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="note">Generated {esc(facts["generated_at"])} from the stored records; the '
        "same facts are in the JSON file beside this page.</p>",
        section("Model", key_values(model_rows(model))),
        section("Training data", training_html(facts["training_data"])),
        section("Validation of the run that fitted it", validation_html(facts["validation"])),
        section("Gate decision", gate_html(gate)),
        section("Approval", approval_html(facts["approval"])),
        section("Shadow runs", shadow_html(facts["shadow"])),
        section("Runs scored with it", runs_html(facts["runs"])),
        section("Realised performance", performance_html(facts["realised_performance"])),
        section("Libraries", key_values(sorted((model["library_versions"] or {}).items()))),
        section(
            "Model card",
            markdown_html(facts["model_card"]) if facts["model_card"] else "<p>missing</p>",
        ),
    ]
    return page(title, "<main>" + "".join(sections) + "</main>")


def section(heading: str, body: str) -> str:
    return f"<section><h2>{esc(heading)}</h2>{body}</section>"


def key_values(rows) -> str:
    return table(("", ""), [(esc(k), cell(v)) for k, v in rows])


def cell(value) -> str:
    if isinstance(value, dict):
        return esc(", ".join(f"{k}={v}" for k, v in value.items())) or "—"
    return fmt_metric(value)


def model_rows(model: dict) -> list[tuple[str, object]]:
    return [
        ("status", model["status"]),
        ("fitted by run", model["run_id"]),
        ("registered", fmt_time(model["created_at"])),
        ("promoted", fmt_time(model["promoted_at"])),
        ("estimator", model["estimator"]),
        ("hyperparameters", model["params"]),
        ("artifact", model["artifact_uri"]),
        ("artifact sha256", model["artifact_sha256"]),
        ("code version", model["code_version"]),
        ("rows erased since", model["erased_rows"]),
    ]


def training_html(data: dict | None) -> str:
    if data is None:
        return "<p>The training snapshot's record is gone (pruned).</p>"
    rows = [
        ("snapshot id", data["snapshot_id"]),
        ("as_of", data["as_of"]),
        ("rows", data["row_count"]),
        ("sha256", data["sha256"]),
        ("sha256 before erasures", data["original_sha256"] or "—"),
        ("source table", data["source_table"]),
        ("file", data["uri"]),
        ("erasures", len(data["erasures"])),
    ]
    query = f"<pre>{esc(data['query'])}</pre>" if data["query"] else ""
    return key_values(rows) + query


def validation_html(validations: list[dict]) -> str:
    if not validations:
        return f"<p>{NOT_RECORDED}</p>"
    rows = [
        (
            esc(v["suite"]),
            badge("passed" if v["success"] else "failed", "ok" if v["success"] else "alert"),
            fmt_int((v.get("statistics") or {}).get("evaluated_expectations")),
            fmt_int(v["critical_failed"]),
            fmt_int(v["warnings_failed"]),
            esc(v.get("result_uri")),
        )
        for v in validations
    ]
    headers = ("suite", "verdict", "expectations", "critical failed", "warnings", "result")
    return table(headers, rows, numeric=(2, 3, 4))


def gate_html(gate: dict) -> str:
    candidate, champion = gate["candidate_metrics"] or {}, gate["champion_metrics"] or {}
    metrics = sorted(set(candidate) | set(champion))
    rows = [
        (
            esc(m) + (" (primary)" if m == gate["primary_metric"] else ""),
            fmt_metric(candidate.get(m)),
            fmt_metric(champion.get(m)) if champion else "—",
        )
        for m in metrics
    ]
    champion_name = (
        f"champion v{gate['champion_version']}" if gate["champion_version"] else "no champion"
    )
    head = table(
        ("metric on the same holdout", "this version", champion_name), rows, numeric=(1, 2)
    )
    facts = key_values(
        [
            ("promotion margin", gate["promotion_margin"]),
            ("forced", gate["forced"]),
            ("decision", gate["decision_reason"]),
        ]
    )
    return head + facts


def approval_facts(model: ModelVersion) -> dict:
    """The request for a person's approval and its answer, as stored on the version."""
    if not model.approval:
        return {"recorded": False, "note": f"{NOT_RECORDED}: no approval was asked"}
    return {"recorded": True, **model.approval}


def approval_html(approval: dict) -> str:
    if not approval["recorded"]:
        return f"<p>{esc(approval['note'])}</p>"
    by = approval.get("answered_by") or {}
    evidence = approval.get("evidence") or {}
    rows = [
        ("asked because", "; ".join(approval.get("conditions") or [])),
        ("asked by run", approval.get("requested_by_run")),
        ("asked", fmt_time(approval.get("requested_at"))),
        ("deadline", fmt_time(approval.get("deadline"))),
        ("approvers", ", ".join(approval.get("approvers") or [])),
        ("verdict", approval.get("verdict") or "waiting"),
        ("answered by", by.get("name") or by.get("id") or "—"),
        ("answered", fmt_time(approval.get("answered_at"))),
        ("reason", approval.get("reason") or "—"),
        ("shown: candidate metrics", evidence.get("candidate_metrics")),
        (
            "shown: champion",
            f"v{evidence['champion_version']}" if evidence.get("champion_version") else "—",
        ),
        ("shown: champion metrics", evidence.get("champion_metrics")),
        ("shown: drift alerts", len(evidence.get("drift_alerts") or [])),
        ("shown: run report", evidence.get("report")),
    ]
    return key_values(rows)


def shadow_facts(model: ModelVersion) -> dict:
    """The judgment of its shadow runs on realised labels, as stored on the version."""
    if not model.shadow:
        return {"recorded": False, "note": f"{NOT_RECORDED}: it did not score in shadow"}
    return {"recorded": True, **model.shadow}


def shadow_html(shadow: dict) -> str:
    if not shadow["recorded"]:
        return f"<p>{esc(shadow['note'])}</p>"
    metric = shadow.get("metric")
    rows = [
        (
            esc(run["run_id"]),
            esc(fmt_time(run.get("as_of"))),
            fmt_int(run["labelled"]),
            fmt_metric((run.get("champion") or {}).get(metric)),
            fmt_metric((run.get("challenger") or {}).get(metric)),
        )
        for run in shadow.get("runs", [])
    ]
    head = key_values(
        [
            ("verdict", shadow.get("verdict")),
            ("judged", fmt_time(shadow.get("judged_at"))),
            ("judged by run", shadow.get("judged_by_run")),
            ("metric", metric),
            ("labelled keys (all runs)", shadow.get("labelled")),
            ("champion", (shadow.get("champion") or {}).get(metric)),
            ("this version", (shadow.get("challenger") or {}).get(metric)),
            ("gain", shadow.get("gain")),
        ]
    )
    headers = ("shadow run", "as_of", "labelled", f"champion {metric}", f"this version {metric}")
    return head + table(headers, rows, numeric=(2, 3, 4))


def runs_html(runs: list[dict]) -> str:
    if not runs:
        return "<p>No run has scored with this version.</p>"
    rows = [
        (
            esc(r["run_id"]),
            esc(r["as_of"][:16].replace("T", " ")),
            esc(r["status"]),
            esc(r["scope"]),
            fmt_int(r["rows_scored"]),
            esc(r["code_version"]),
            esc((r["spec_sha256"] or "")[:16]),
            esc((r["suites_sha256"] or "")[:16]),
        )
        for r in runs
    ]
    headers = ("run", "as_of", "status", "scope", "rows", "code", "spec sha256", "suites sha256")
    return table(headers, rows, numeric=(4,))


def performance_html(rows: list[dict]) -> str:
    if not rows:
        return "<p>No labels have arrived for its predictions yet.</p>"
    body = [
        (
            esc(r["run_id"]),
            esc(r["metric"]),
            fmt_metric(r["value"]),
            fmt_metric(r["holdout"]),
            f"{fmt_int(r['labelled'])} of {fmt_int(r['eligible'])}",
            badge("alert") if r["alert"] else ("trusted" if r["trusted"] else "too few labels"),
        )
        for r in rows
    ]
    headers = ("run", "metric", "realised", "holdout", "labelled of eligible", "verdict")
    return table(headers, body, numeric=(2, 3))
