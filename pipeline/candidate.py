"""Train a candidate on the training snapshot and decide whether it replaces the champion."""

import logging
import platform

from pipeline import registry, train
from pipeline.errors import PipelineError
from pipeline.provenance import code_version, library_versions
from pipeline.snapshot import load_manifest, read_snapshot
from pipeline.spec import JobSpec
from pipeline.storage import DataRoot
from pipeline.validate import run_key

log = logging.getLogger(__name__)


def train_candidate(spec: JobSpec, manifest: dict, run_id: str) -> dict:
    """Fit the pipeline on the snapshot; save it, its metadata and model card in the run folder."""
    frame = read_snapshot(manifest)
    model, metrics, seconds = train.fit(spec, frame)
    return save_candidate(spec, manifest, run_id, model, metrics, seconds)


def save_candidate(spec: JobSpec, manifest: dict, run_id: str, model, metrics, seconds) -> dict:
    """Write a fitted candidate with what it takes to rebuild it: spec, data, seeds, versions."""
    root = DataRoot()
    folder = root.path("runs", spec.name, run_key(run_id), "candidate")
    params = {
        "estimator": spec.model.estimator,
        "estimator_params": model.named_steps["model"].get_params(),
        "seed": spec.model.seed,
        "holdout_fraction": spec.model.holdout_fraction,
    }
    dtypes = {s["name"]: s["type"] for s in manifest["schema"]}
    metadata = {
        "job": spec.name,
        "run_id": run_id,
        "task": spec.task,
        "target": spec.target,
        "spec": spec.model_dump(mode="json"),
        "features": {
            "order": spec.features.all,
            "numeric": spec.features.numeric,
            "categorical": spec.features.categorical,
            "boolean": spec.features.boolean,
            "source_dtypes": {name: dtypes[name] for name in spec.features.all},
            "output_names": [str(n) for n in model[:-1].get_feature_names_out()],
        },
        "classes": [str(c) for c in getattr(model, "classes_", [])],
        "params": params,
        "metrics": metrics,
        "primary_metric": spec.primary_metric,
        "training_snapshot": {k: manifest[k] for k in ("uri", "sha256", "as_of", "row_count")},
        "code_version": code_version(),
        "library_versions": library_versions(),
        "python": platform.python_version(),
        "fit_seconds": round(seconds, 3),
    }
    artifact = registry.save_model(root, folder, model, metadata, model_card(spec, metadata))
    return {
        "folder_uri": root.uri(folder),
        "artifact_sha256": artifact["sha256"],
        "training_snapshot_sha256": manifest["sha256"],
        "training_snapshot_uri": manifest["uri"],
        "params": jsonable(params),
        "metrics": metrics,
        "seconds": round(seconds, 3),
    }


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def gate(url: str, spec: JobSpec, candidate: dict, run_id: str, force_promote: bool) -> dict:
    """Promote the candidate if it beats the champion on the same holdout (or if forced).

    The champion is re-scored on this snapshot's holdout, so both numbers describe the same rows.
    Returns the model to score with (the champion after the decision) and the decision itself.
    """
    current = registry.champion(url, spec.name)
    if current and current["run_id"] == run_id:  # a re-run: judge against the champion it replaced
        previous = current["champion_version"]
        current = registry.fetch_version(url, spec.name, version=previous) if previous else None
    champion_metrics = None
    if current is None:
        promote, reason = True, "first model for this job: promoted as champion"
    else:
        champion_model = registry.load_model(current["artifact_uri"], current["artifact_sha256"])
        frame = read_snapshot(load_manifest(candidate["training_snapshot_uri"]))
        _, _, x_hold, y_hold = train.split(frame, spec)
        champion_metrics = train.evaluate(champion_model, x_hold, y_hold, spec.task)
        promote, reason = train.beats(spec, candidate["metrics"], champion_metrics)
        reason = (
            f"{'promoted' if promote else 'kept champion v' + str(current['version'])}: {reason}"
        )
    forced = force_promote and not promote
    if forced:
        promote, reason = True, f"force_promote set at trigger time; the gate said: {reason}"
    decision = registry.register(
        url, spec, run_id, candidate, champion_metrics, current, promote, reason, forced
    )
    return {**serving_model(url, spec), "decision": decision}


def serving_model(url: str, spec: JobSpec) -> dict:
    """The champion to score with, as a small dict; a clear error if there is none yet."""
    current = registry.champion(url, spec.name)
    if current is None:
        raise PipelineError(
            f"job {spec.name}: no champion model yet; run with retraining enabled first "
            "(retrain.policy is 'never' or the policy skipped training)"
        )
    return {
        "version": current["version"],
        "artifact_uri": current["artifact_uri"],
        "artifact_sha256": current["artifact_sha256"],
    }


def model_card(spec: JobSpec, metadata: dict) -> str:
    """A short human-readable card: data, features, metrics, intended use, caveats."""
    snap = metadata["training_snapshot"]
    metrics = "\n".join(f"| {k} | {v:.5g} |" for k, v in metadata["metrics"].items())
    return f"""# Model card: {spec.name}

{spec.description or "No description in the job spec."}

## Data
- Source table: `{spec.source.table}`, rows with `{spec.source.timestamp}` < {snap["as_of"]}
  and a known `{spec.target}`.
- Training snapshot: {snap["uri"]} ({snap["row_count"]} rows, sha256 `{snap["sha256"]}`).
- Holdout: {spec.model.holdout_fraction:.0%} of keys, by a stable hash of `{spec.source.key}`.

## Model
- Task: {spec.task}; estimator `{spec.model.estimator}`, seed {spec.model.seed}.
- Features in order: {", ".join(spec.features.all)}.
- Preprocessing: median imputation with missing indicators for numbers, one-hot encoding for
  categories (unseen ones map to "infrequent"), most-frequent imputation for flags.

## Holdout metrics
| metric | value |
| --- | --- |
{metrics}

## Intended use
Nightly scoring of every row of `{spec.source.table}` into `scoring.{spec.latest_view}`.

## Caveats
- Trained on a snapshot: rows changed after {snap["as_of"]} were not seen.
- Scores are only as good as the inputs; check `scoring.validation_results` and
  `scoring.drift_reports` for the run before acting on them.
- Code {metadata["code_version"]}, scikit-learn {metadata["library_versions"].get("scikit-learn")}.
"""
