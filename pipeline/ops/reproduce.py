"""Prove a past run: rebuild its model from the recorded snapshot and spec, re-score, compare.

The snapshots are the record, not the live table: a run reproduces after its source rows were
updated, deleted or added to, as long as its snapshots are on the data root.
"""

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from psycopg2 import sql

from pipeline.contracts import Manifest
from pipeline.errors import PipelineError
from pipeline.model import fitting, registry
from pipeline.spec import JobSpec, spec_from_record
from pipeline.stages.snapshot import read_snapshot
from pipeline.store import db
from pipeline.store.storage import DataRoot

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

    @property
    def exact(self) -> bool:
        return self.compared > 0 and self.matched == self.compared and not self.differences


def find_run(url: str, job: str, run: str) -> dict:
    """The scoring_runs row for `run`, or the latest published run when `run` is 'latest'."""
    query = "SELECT * FROM scoring.scoring_runs WHERE job = %s AND status = 'published'"
    params: list = [job]
    if run == "latest":
        query += " ORDER BY as_of DESC, published_at DESC LIMIT 1"
    else:
        query += " AND run_id = %s"
        params.append(run)
    row = db.fetch_one(url, query, params)
    if row is None:
        raise PipelineError(f"job {job}: no published run {run!r} in scoring.scoring_runs")
    if row["predictions_pruned_at"]:
        raise PipelineError(
            f"job {job}: the predictions of run {row['run_id']} were pruned on "
            f"{row['predictions_pruned_at']:%Y-%m-%d} (the job's retention): nothing to compare"
        )
    return row


def snapshot_manifest(url: str, job: str, sha256: str) -> Manifest:
    """The manifest of the snapshot with this content hash (as recorded in scoring.snapshots)."""
    row = db.fetch_one(
        url,
        "SELECT manifest FROM scoring.snapshots WHERE job = %s AND sha256 = %s LIMIT 1",
        (job, sha256),
    )
    if row is None:
        raise PipelineError(f"job {job}: no snapshot with sha256 {sha256[:16]}... is recorded")
    return Manifest.from_json(row["manifest"])


def recorded_spec(url: str, job: str, version: int) -> tuple[dict, JobSpec]:
    """The model_versions row and the spec the model was trained with (from its metadata.json)."""
    model = registry.fetch_version(url, job, version=version)
    if model is None:
        raise PipelineError(f"job {job}: model version {version} is not in the registry")
    root = DataRoot()
    folder = root.path_of(model["artifact_uri"]).rsplit("/", 1)[0]
    metadata = root.read_json(f"{folder}/metadata.json")
    if "spec" not in metadata:
        raise PipelineError(f"{folder}/metadata.json records no spec: cannot rebuild v{version}")
    return model, spec_from_record(metadata["spec"])


def stored_predictions(url: str, spec: JobSpec, run_id: str) -> pd.DataFrame:
    rows = db.fetch_all(
        url,
        sql.SQL("SELECT key, score, label FROM {} WHERE run_id = %s ORDER BY key").format(
            db.scoring_ident(spec.predictions_table)
        ),
        (run_id,),
    )
    return pd.DataFrame(rows, columns=["key", "score", "label"])


def reproduce_run(url: str, job: str, run: str) -> Reproduction:
    """Rebuild the run's model from its training snapshot, re-score its snapshot, compare."""
    row = find_run(url, job, run)
    model_row, spec = recorded_spec(url, job, row["model_version"])
    training = snapshot_manifest(url, job, model_row["training_snapshot_sha256"])
    log.info("rebuilding model v%d of %s from snapshot %s", row["model_version"], job, training.uri)
    rebuilt, _, _ = fitting.fit(spec, read_snapshot(training))
    scoring = read_snapshot(snapshot_manifest(url, job, row["scoring_snapshot_sha256"]))
    score, label = fitting.predict_scores(rebuilt, fitting.feature_frame(scoring, spec), spec.task)
    fresh = pd.DataFrame({"key": scoring[spec.source.key].to_numpy(), "score": score})
    fresh["label"] = label if label is not None else None
    stored = stored_predictions(url, spec, row["run_id"])
    result = compare(job, row["run_id"], fresh, stored)
    result.spec_sha256, result.suites_sha256 = row.get("spec_sha256"), row.get("suites_sha256")
    return result


def compare(job: str, run_id: str, fresh: pd.DataFrame, stored: pd.DataFrame) -> Reproduction:
    """Key by key: the same keys, bit-identical scores and identical labels."""
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
    ok = same_score & same_label
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
