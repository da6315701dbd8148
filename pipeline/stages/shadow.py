"""A challenger in shadow (`governance.shadow_runs`): it scores beside the champion into
`scoring.<job>_shadow` for that many published runs, then both are judged on the same labels
that arrived since, and the challenger is promoted (or its approval asked) only if it wins.

The gate (`stages.train.gate`) puts a winning candidate in shadow; `register` judges it at the
start of each later run (when its runs are done), so a run that promotes it scores with it.
"""

import logging
from datetime import UTC, datetime

import pandas as pd

from pipeline.logic.gate import gain_of
from pipeline.logic.realised import realised_metrics
from pipeline.monitoring.performance import eligible_keys, labelled_frame
from pipeline.spec import JobSpec
from pipeline.stages.approve import reasons_to_ask
from pipeline.warehouse import db, models
from pipeline.warehouse.jobs import lock_job
from pipeline.warehouse.models import ModelVersion
from pipeline.warehouse.predictions import late_labelled_predictions, shadow_runs

log = logging.getLogger(__name__)

GIVE_UP_AFTER = 3  # times shadow_runs: runs without enough labels before the challenger is let go


def shadow_model(url: str, job: str) -> dict | None:
    """The challenger in shadow, as the serving model's `shadow`, or None."""
    challenger = models.fetch_version(url, job, status="shadow")
    if challenger is None:
        return None
    return {
        "version": challenger.version,
        "artifact_uri": challenger.artifact_uri,
        "artifact_sha256": challenger.artifact_sha256,
    }


def judged_metric(spec: JobSpec, metrics: dict) -> str:
    """The metric both are judged on: the primary one when labels can measure it, else ROC AUC
    (classification) or RMSE (regression)."""
    if spec.primary_metric in metrics or not metrics:
        return spec.primary_metric
    return "roc_auc" if spec.task == "classification" else "rmse"


def compare_on_labels(url: str, spec: JobSpec, runs: list[dict]) -> dict:
    """Champion and challenger on the same late-labelled keys of each shadow run: per run, and
    pooled over all of them."""
    per_run, pooled = [], []
    for run in runs:
        eligible = eligible_keys(url, spec, run)
        if eligible is None:
            continue
        champion = labelled_frame(
            spec, late_labelled_predictions(url, spec, run["run_id"], eligible)
        )
        challenger = labelled_frame(
            spec,
            late_labelled_predictions(url, spec, run["run_id"], eligible, spec.shadow_table),
        )
        pair = champion.merge(challenger, on="key", suffixes=("", "_shadow"))
        entry = {"run_id": run["run_id"], "as_of": run["as_of"], "labelled": len(pair)}
        if len(pair):
            entry["champion"] = realised_metrics(spec, pair)
            entry["challenger"] = realised_metrics(spec, shadow_side(pair))
            pooled.append(pair)
        per_run.append(entry)
    both = pd.concat(pooled, ignore_index=True) if pooled else None
    return {
        "runs": per_run,
        "labelled": 0 if both is None else len(both),
        "champion": realised_metrics(spec, both) if both is not None else {},
        "challenger": realised_metrics(spec, shadow_side(both)) if both is not None else {},
    }


def shadow_side(pair: pd.DataFrame) -> pd.DataFrame:
    """The challenger's columns of a joined pair, named as a labelled frame's."""
    return pair.assign(
        score=pair["score_shadow"],
        label=pair["label_shadow"],
        probabilities=pair["probabilities_shadow"],
    )


def judge_shadow(url: str, spec: JobSpec, run_id: str) -> dict | None:
    """Judge the challenger in shadow once it has scored in `shadow_runs` published runs;
    returns the judgment stored on it (None while it still waits or when there is none)."""
    challenger = models.fetch_version(url, spec.name, status="shadow")
    if challenger is None:
        return None
    wanted = spec.governance.shadow_runs
    runs = shadow_runs(url, spec, challenger.version)
    if len(runs) < wanted:
        log.info("challenger v%d in shadow: %d of %d run(s)", challenger.version, len(runs), wanted)
        return None
    found = compare_on_labels(url, spec, runs)
    limits = spec.monitoring.performance
    metric = judged_metric(spec, found["champion"])
    judgment = {
        **found,
        "metric": metric,
        "judged_at": datetime.now(UTC).isoformat(),
        "judged_by_run": run_id,
    }
    if found["labelled"] < limits.min_labelled:
        if len(runs) < GIVE_UP_AFTER * max(wanted, 1):
            log.info(
                "challenger v%d: %d labelled key(s) over %d shadow run(s), %d needed: waiting",
                challenger.version,
                found["labelled"],
                len(runs),
                limits.min_labelled,
            )
            return None
        verdict = "no_labels"
        note = (
            f"; let go after {len(runs)} shadow run(s): {found['labelled']} labelled key(s), "
            f"{limits.min_labelled} needed (monitoring.performance.min_labelled)"
        )
        return settle_shadow(
            url, spec, challenger, "rejected", {**judgment, "verdict": verdict}, note
        )
    gain = gain_of(spec, found["challenger"], found["champion"], metric)
    margin = spec.model.promotion_margin
    compared = (
        f"realised {metric} {found['challenger'][metric]:.5f} vs champion "
        f"{found['champion'][metric]:.5f} on the same {found['labelled']:,} labelled key(s) "
        f"of {len(runs)} shadow run(s): gain {gain:+.5f}"
    )
    judgment["gain"] = gain
    if not (gain > 0 and gain >= margin):
        note = f"; lost in shadow: {compared} (margin {margin})"
        return settle_shadow(
            url, spec, challenger, "rejected", {**judgment, "verdict": "lost"}, note
        )
    needs = reasons_to_ask(url, spec, gain=gain, first=False, forced=False)
    if needs:
        note = f"; won in shadow ({compared}); awaits approval ({'; '.join(needs)})"
        request = {"conditions": needs, "requested_by_run": run_id}
        return settle_shadow(
            url,
            spec,
            challenger,
            "awaiting_approval",
            {**judgment, "verdict": "awaiting_approval"},
            note,
            request,
        )
    note = f"; won in shadow: {compared}: promoted"
    return settle_shadow(
        url, spec, challenger, "champion", {**judgment, "verdict": "promoted"}, note
    )


def settle_shadow(
    url: str,
    spec: JobSpec,
    challenger: ModelVersion,
    status: str,
    judgment: dict,
    note: str,
    request: dict | None = None,
) -> dict:
    """Store the judgment on the challenger and give it its status, under the job's lock."""
    with db.transaction(url) as conn, conn.cursor() as cur:
        lock_job(cur, spec.name)
        models.record_shadow(cur, spec.name, challenger.version, judgment)
        if request:
            models.note_approval(cur, spec.name, challenger.version, request)
        models.settle(cur, spec.name, challenger.version, status, note, since="shadow")
    log.info("job %s: challenger v%d%s", spec.name, challenger.version, note)
    return judgment
