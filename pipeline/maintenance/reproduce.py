"""Prove a past run: rebuild its model from the recorded snapshot and spec, re-score, compare.

The snapshots are the record, not the live table: a run reproduces after its source rows were
updated, deleted or added to, as long as its snapshots are on the data root. After an erasure
(pipeline.stages.erasure) the erased keys are gone from its snapshot and its predictions:
the rest must still match exactly, and the result says how many keys were erased, when and at
whose request; a model whose training rows were erased is not rebuilt but loaded (verified).
"""

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.contracts import Manifest
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import read_snapshot
from pipeline.errors import PipelineError
from pipeline.logic.personal import mask
from pipeline.model import fitting
from pipeline.model.files import load_model, verified_payload
from pipeline.spec import JobSpec, spec_from_record
from pipeline.warehouse import models, runs
from pipeline.warehouse.erasures import erasures_of
from pipeline.warehouse.models import ModelVersion
from pipeline.warehouse.predictions import stored_predictions
from pipeline.warehouse.runs import RunRow
from pipeline.warehouse.snapshots import recorded_snapshot

log = logging.getLogger(__name__)

SHOWN_DIFFERENCES = 10


@dataclass
class Reproduction:
    job: str
    run_id: str
    compared: int
    matched: int
    differences: list[dict] = field(default_factory=list)
    spec_sha256: str | None = None
    suites_sha256: str | None = None
    scored: int | None = None  # the rows the run published
    erased: list[dict] = field(default_factory=list)  # erasures of its scoring snapshot
    rebuilt: bool = True  # False: scored with the registered model (its training rows erased)

    @property
    def erased_keys(self) -> int:
        return sum(e["rows_removed"] for e in self.erased)

    def erasure_note(self) -> str:
        """`k keys erased on DATE (request R)`, or '' when none were."""
        if not self.erased:
            return ""
        dates = sorted({f"{e['erased_at']:%Y-%m-%d}" for e in self.erased})
        requests = sorted({i for e in self.erased for i in e["request_ids"]})
        plural = "s" if len(requests) > 1 else ""
        return (
            f"{self.erased_keys} keys erased on {', '.join(dates)} "
            f"(request{plural} {', '.join(map(str, requests))})"
        )

    @property
    def exact(self) -> bool:
        return self.compared > 0 and self.matched == self.compared and not self.differences


def find_run(url: str, job: str, run: str) -> RunRow:
    """The published run `run`, or the latest published run when `run` is 'latest'."""
    row = runs.newest_published(url, job) if run == "latest" else runs.published_run(url, job, run)
    if row is None:
        raise PipelineError(f"job {job}: no published run {run!r} in scoring.scoring_runs")
    if row.predictions_pruned_at:
        raise PipelineError(
            f"job {job}: the predictions of run {row.run_id} were pruned on "
            f"{row.predictions_pruned_at:%Y-%m-%d} (the job's retention): nothing to compare"
        )
    return row


def snapshot_manifest(
    url: str,
    job: str,
    snapshot_id: int | None,
    sha256: str | None,
    kind: str,
    what: str,
    as_of=None,
    model_version: int | None = None,
) -> Manifest:
    """The manifest of the snapshot `what` (a run, a model) recorded: by its id, or by content
    hash for rows recorded before snapshot ids (`recorded_snapshot`)."""
    row = recorded_snapshot(url, job, snapshot_id, sha256, kind, what, as_of, model_version)
    if row is None:
        recorded = f"id {snapshot_id}" if snapshot_id is not None else f"sha256 {sha256}"
        raise PipelineError(
            f"job {job}: the {kind} snapshot of {what} ({recorded}) is no longer recorded in "
            "scoring.snapshots (pruned?)"
        )
    return row.recorded_manifest


def recorded_spec(url: str, job: str, version: int) -> tuple[ModelVersion, JobSpec]:
    """The model version and the spec it was trained with (from its metadata.json)."""
    model = models.fetch_version(url, job, version=version)
    if model is None:
        raise PipelineError(f"job {job}: model version {version} is not in the registry")
    root = DataRoot()
    folder = root.path_of(model.artifact_uri).rsplit("/", 1)[0]
    metadata = root.read_json(f"{folder}/metadata.json")
    if "spec" not in metadata:
        raise PipelineError(f"{folder}/metadata.json records no spec: cannot rebuild v{version}")
    return model, spec_from_record(metadata["spec"])


def reproduce_run(url: str, job: str, run: str) -> Reproduction:
    """Rebuild the run's model from its training snapshot, re-score its snapshot, compare."""
    row = find_run(url, job, run)
    if row.model_version is None:
        raise PipelineError(f"job {job}: run {row.run_id} records no model version")
    model_row, spec = recorded_spec(url, job, row.model_version)
    # the model that scored the run must still be the file the registry recorded
    verified_payload(model_row.artifact_uri, model_row.artifact_sha256)
    training = snapshot_manifest(
        url,
        job,
        model_row.training_snapshot_id,
        model_row.training_snapshot_sha256,
        "training",
        f"model v{row.model_version}",
        model_version=row.model_version,
    )
    if training.erasures:
        log.warning(
            "model v%d of %s was trained on rows since erased (its training snapshot %s was "
            "rewritten): it cannot be rebuilt bit for bit, so the run is re-scored with its "
            "registered file (sha256 verified)",
            row.model_version,
            job,
            training.uri,
        )
        rebuilt = load_model(model_row.artifact_uri, model_row.artifact_sha256)
    else:
        log.info(
            "rebuilding model v%d of %s from snapshot %s", row.model_version, job, training.uri
        )
        rebuilt = fitting.fit(spec, read_snapshot(training)).model
    scored = snapshot_manifest(
        url,
        job,
        row.scoring_snapshot_id,
        row.scoring_snapshot_sha256,
        "scoring",
        f"run {row.run_id}",
        row.as_of,
    )
    log.info("re-scoring run %s of %s from snapshot %s", row.run_id, job, scored.uri)
    scoring = read_snapshot(scored)
    out = fitting.predict(rebuilt, fitting.feature_frame(scoring, spec), spec)
    fresh = pd.DataFrame({"key": scoring[spec.source.key].to_numpy(), "score": out.score})
    fresh["label"] = out.label if out.label is not None else None
    fresh["probabilities"] = (
        [dict(zip(out.classes, map(float, p), strict=True)) for p in out.probabilities]
        if out.probabilities is not None
        else None
    )
    stored = stored_predictions(url, spec, row.run_id)
    result = compare(job, row.run_id, fresh, stored)
    if spec.source.key in spec.personal:
        result.differences = [{**d, "key": mask(d["key"])} for d in result.differences]
    result.spec_sha256, result.suites_sha256 = row.spec_sha256, row.suites_sha256
    result.scored, result.rebuilt = row.rows_scored, not training.erasures
    result.erased = erasures_of(url, job, [scored.snapshot_id])
    return result


def compare(job: str, run_id: str, fresh: pd.DataFrame, stored: pd.DataFrame) -> Reproduction:
    """Key by key: the same keys, bit-identical scores and probabilities, identical labels."""
    merged = fresh.assign(key=fresh["key"].astype(str)).merge(
        stored.assign(key=stored["key"].astype(str)),
        on="key",
        how="outer",
        suffixes=("_rebuilt", "_stored"),
        indicator=True,
    )
    both = merged["_merge"] == "both"
    same_score = both & (merged["score_rebuilt"].to_numpy() == merged["score_stored"].to_numpy())
    rebuilt_label, stored_label = merged["label_rebuilt"], merged["label_stored"]
    same_label = (rebuilt_label.astype(str) == stored_label.astype(str)) | (
        rebuilt_label.isna() & stored_label.isna()
    )
    pairs = zip(merged["probabilities_rebuilt"], merged["probabilities_stored"], strict=True)
    same_probabilities = np.array([a == b for a, b in pairs], dtype=bool)
    ok = same_score & same_label & same_probabilities
    differences = [
        {
            "key": r.key,
            "rebuilt": None if pd.isna(r.score_rebuilt) else float(r.score_rebuilt),
            "stored": None if pd.isna(r.score_stored) else float(r.score_stored),
            "label_rebuilt": r.label_rebuilt,
            "label_stored": r.label_stored,
        }
        for r in merged[~ok].head(SHOWN_DIFFERENCES).itertuples()
    ]
    result = Reproduction(job, run_id, int(len(merged)), int(ok.sum()), differences)
    if not result.exact:
        gap = np.abs(merged["score_rebuilt"] - merged["score_stored"]).max()
        log.warning(
            "run %s: %d of %d differ; max |score diff| %s",
            run_id,
            result.compared - result.matched,
            result.compared,
            gap,
        )
    return result
