"""Train a candidate on the training snapshot and decide whether it replaces the champion."""

import logging
import platform

from pipeline.contracts import (
    Candidate,
    Context,
    Manifest,
    RetrainDecision,
    ServingModel,
    plain_json,
)
from pipeline.datafiles.layout import candidate_dir
from pipeline.datafiles.root import DataRoot
from pipeline.datafiles.snapshots import load_manifest, read_snapshot
from pipeline.errors import ModelIntegrityError, PipelineError
from pipeline.logic.gate import beats, gain_of
from pipeline.model import fitting
from pipeline.model.card import model_card
from pipeline.model.files import load_model, save_model, verified_payload
from pipeline.model.registry import register_candidate
from pipeline.provenance import code_version, library_versions
from pipeline.spec import JobSpec
from pipeline.stages.approve import reasons_to_ask
from pipeline.stages.shadow import judge_shadow, shadow_model
from pipeline.warehouse import models
from pipeline.warehouse.models import ModelVersion

log = logging.getLogger(__name__)


def train(ctx: Context, decision: RetrainDecision, manifest: Manifest) -> Candidate:
    """Fit a candidate; `pipeline.flow` runs this only when `decision` says one is due."""
    return train_candidate(ctx.spec, manifest, ctx.run.run_id)


def register(ctx: Context, candidate: Candidate | None) -> ServingModel:
    """The model to score with: the gate's verdict on this run's candidate, else the champion
    (its file checked here, so a broken one stops the run with the ways out), once a challenger
    whose shadow runs are done is judged; with the challenger still in shadow, if any."""
    if candidate is None:
        judge_shadow(ctx.url, ctx.spec, ctx.run.run_id)
        serving = serving_model(ctx.url, ctx.spec)
        try:
            verified_payload(serving.artifact_uri, serving.artifact_sha256)
        except ModelIntegrityError as exc:
            raise broken_champion(ctx.spec, serving.version, exc) from exc
        return ServingModel.from_json(
            {**serving.to_json(), "shadow": shadow_model(ctx.url, ctx.spec.name)}
        )
    return gate(ctx.url, ctx.spec, candidate, ctx.run.run_id, ctx.run.force_promote)


def train_candidate(spec: JobSpec, manifest: Manifest, run_id: str) -> Candidate:
    """Fit the pipeline on the snapshot; save it, its metadata and model card in the run folder."""
    return save_candidate(spec, manifest, run_id, fitting.fit(spec, read_snapshot(manifest)))


def save_candidate(spec: JobSpec, manifest: Manifest, run_id, fitted: fitting.Fitted):
    """Write a fitted candidate with what it takes to rebuild it (spec, data, seeds, versions)
    and its holdout scores."""
    model, metrics, seconds, holdout_scores = fitted
    root = DataRoot()
    folder = candidate_dir(root, spec.name, run_id)
    params = {
        "estimator": spec.model.estimator,
        "estimator_params": model.named_steps["model"].get_params(),
        "seed": spec.model.seed,
        "holdout_fraction": spec.model.holdout_fraction,
    }
    dtypes = {s["name"]: s["type"] for s in manifest.schema}
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
        "training_snapshot": {
            "uri": manifest.uri,
            "sha256": manifest.sha256,
            "as_of": manifest.as_of,
            "row_count": manifest.row_count,
        },
        "code_version": code_version(),
        "library_versions": library_versions(),
        "python": platform.python_version(),
        "fit_seconds": round(seconds, 3),
    }
    card = model_card(spec, metadata)
    artifact = save_model(root, folder, model, metadata, card, holdout_scores)
    return Candidate(
        folder_uri=root.uri(folder),
        artifact_sha256=artifact["sha256"],
        training_snapshot_sha256=manifest.sha256,
        training_snapshot_uri=manifest.uri,
        params=plain_json(params),
        metrics=metrics,
        seconds=round(seconds, 3),
        training_snapshot_id=manifest.snapshot_id,
    )


def gate(url: str, spec: JobSpec, candidate: Candidate, run_id: str, force_promote: bool):
    """Promote the candidate if it beats the champion on the same holdout (or if forced);
    when `governance.approval` asks for it, the candidate waits for a person instead.

    The champion is re-scored on this snapshot's holdout, so both numbers describe the same rows.
    Returns the model to score with (the champion after the decision) and the decision itself.
    """
    current = models.champion(url, spec.name)
    if current and current.run_id == run_id:  # a re-run: judge against the champion it replaced
        previous = current.champion_version
        current = models.fetch_version(url, spec.name, version=previous) if previous else None
    champion_metrics, unjudged = None, False
    if current is None:
        promote, reason = True, "first model for this job"
    else:
        try:
            champion_model = load_model(current.artifact_uri, current.artifact_sha256)
        except ModelIntegrityError as exc:
            if not force_promote:
                raise broken_champion(spec, current.version, exc) from exc
            unjudged = True
            promote, reason = False, f"champion v{current.version} could not be loaded: {exc}"
        else:
            frame = read_snapshot(load_manifest(candidate.training_snapshot_uri))
            _, _, x_hold, y_hold = fitting.split(frame, spec)
            gone = sorted(set(getattr(champion_model, "feature_names_in_", [])) - set(x_hold))
            if gone and not force_promote:
                raise PipelineError(
                    f"job {spec.name}: champion v{current.version} reads columns the spec no "
                    f"longer lists as features ({gone}), so it cannot be judged on this run's "
                    "holdout. Promote the candidate anyway with force_promote (the trigger "
                    f"form, or `python -m pipeline run {spec.name} --retrain always "
                    "--force-promote`; recorded), or list the columns again"
                )
            if gone:
                unjudged = True
                promote = False
                reason = f"champion v{current.version} reads columns no longer listed: {gone}"
            else:
                champion_metrics = fitting.evaluate(champion_model, x_hold, y_hold, spec)
                promote, reason = beats(spec, candidate.metrics, champion_metrics)
                if not promote:
                    reason = f"kept champion v{current.version}: {reason}"
    forced = force_promote and not promote
    if forced:
        said = reason if unjudged else f"the gate said: {reason}"
        promote, reason = True, f"force_promote set at trigger time; {said}"
    status, approval = "champion" if promote else "rejected", None
    shadowed = promote and not force_promote and current is not None
    if shadowed and spec.governance.shadow_runs:
        status = "shadow"
        reason = (
            f"in shadow for {spec.governance.shadow_runs} run(s), then judged on the labels "
            f"that arrive (governance.shadow_runs); the gate said: {reason}"
        )
    needs = status == "champion" and reasons_to_ask(
        url,
        spec,
        gain=gain_of(spec, candidate.metrics, champion_metrics) if champion_metrics else None,
        first=current is None,
        forced=force_promote,
    )
    if needs:
        status = "awaiting_approval"
        said = reason if forced else f"the gate said: {reason}"
        reason = f"awaits approval ({'; '.join(needs)}); {said}"
        approval = {"conditions": needs, "requested_by_run": run_id}
    elif status == "champion" and not forced:
        reason = f"{reason}: promoted as champion" if current is None else f"promoted: {reason}"
    decision = register_candidate(
        url, spec, run_id, candidate, champion_metrics, current, status, reason, forced, approval
    )
    if needs and current is None:
        raise PipelineError(
            f"job {spec.name}: v{decision.version}, the job's first model, awaits approval "
            f"({'; '.join(needs)}), so there is no champion to score with yet. Answer it on "
            f"Airflow's Required Actions page (DAG {spec.name}_approval; `python -m pipeline "
            "approvals` lists what waits), then run the job again"
        )
    serving = serving_model(url, spec)
    return ServingModel.from_json(
        {
            **serving.to_json(),
            "decision": decision.to_json(),
            "train_seconds": candidate.seconds,
            "shadow": shadow_model(url, spec.name),
        }
    )


def broken_champion(spec: JobSpec, version: int, exc: ModelIntegrityError) -> ModelIntegrityError:
    """The gate cannot judge against a champion whose file fails verification: the ways out."""
    return ModelIntegrityError(
        f"job {spec.name}: the champion v{version}'s model file is missing or modified "
        f"({exc}); either retire it and fall back to the previous good version with "
        f"`python -m pipeline retire {spec.name}`, or replace it with a new candidate with "
        f"`python -m pipeline run {spec.name} --force-promote --retrain always`"
    )


def serving_model(url: str, spec: JobSpec) -> ServingModel:
    """The champion to score with; a clear error if there is none yet."""
    current = models.champion(url, spec.name)
    if current is None:
        raise PipelineError(
            f"job {spec.name}: no champion model yet; run with retraining enabled first "
            "(retrain.policy is 'never' or the policy skipped training)"
        )
    return serving_of(current)


def serving_of(version: ModelVersion) -> ServingModel:
    """A registered version as the model a run scores with."""
    return ServingModel(
        version=version.version,
        artifact_uri=version.artifact_uri,
        artifact_sha256=version.artifact_sha256,
        training_snapshot_sha256=version.training_snapshot_sha256,
        training_snapshot_id=version.training_snapshot_id,
    )
