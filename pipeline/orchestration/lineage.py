"""Lineage a data platform can read: what each stage read and wrote, handed to Airflow's
hook-lineage collector, which the OpenLineage provider sends with the task's COMPLETE event
(its transport, e.g. `AIRFLOW__OPENLINEAGE__TRANSPORT`, says where: Marquez, DataHub, a file).

Tables are `postgres://host:port/database/schema/table` (never a login); files under a local
data root are `file://` URIs. Files on object storage are `s3://bucket/key`, which the
provider sends when a provider that knows the scheme (Amazon's) is installed.
"""

from pathlib import Path
from urllib.parse import urlsplit

from airflow.sdk import BaseHook
from airflow.sdk.lineage import get_hook_lineage_collector

from pipeline.model.files import ARTIFACT
from pipeline.spec import JobSpec


class StageHook(BaseHook):
    """What read and wrote the assets, as the collector records it: a stage of the pipeline
    (it talks to Postgres and the data root itself, through no Airflow hook)."""

    def __init__(self, stage: str):
        super().__init__()
        self.stage = stage

    def get_conn(self):  # the collector's context never connects
        raise NotImplementedError


def table_uri(url: str, table: str) -> str:
    """A warehouse table as an asset URI: the server and database of `url`, no credentials."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    database = parts.path.lstrip("/") or "postgres"
    schema, _, name = table.rpartition(".")
    return f"postgres://{host}:{parts.port or 5432}/{database}/{schema or 'public'}/{name}"


def file_uri(uri: str) -> str:
    """A data root file's uri as an asset URI (a local path becomes `file://...`)."""
    return uri if "://" in uri else Path(uri).as_uri()


def stage_lineage(
    stage: str, spec: JobSpec, url: str, inputs: dict, result
) -> tuple[list[str], list[str]]:
    """(what the stage read, what it wrote), as asset URIs, from its inputs and result."""
    result = result if isinstance(result, dict) else {}
    if stage.startswith("snapshot_") and result.get("uri"):
        return [table_uri(url, spec.source.table)], [file_uri(result["uri"])]
    if stage == "train" and result.get("folder_uri"):
        model = f"{result['folder_uri']}/{ARTIFACT}"
        return [file_uri(result["training_snapshot_uri"])], [file_uri(model)]
    if stage == "register" and result.get("decision") and inputs.get("train"):
        candidate = f"{inputs['train']['folder_uri']}/{ARTIFACT}"
        return [file_uri(candidate)], [file_uri(result["artifact_uri"])]
    if stage == "score" and result.get("uri"):
        read = [(inputs.get("snapshot_scoring") or {}).get("uri")]
        read.append((inputs.get("register") or {}).get("artifact_uri"))
        return [file_uri(u) for u in read if u], [file_uri(result["uri"])]
    if stage == "publish" and result:
        parts = [p for p in inputs.get("score") or [] if isinstance(p, dict) and p.get("uri")]
        tables = [f"scoring.{spec.predictions_table}"]
        if (inputs.get("snapshot_scoring") or {}).get("change"):  # an incremental run
            tables.append(f"scoring.{spec.changes_table}")
        return [file_uri(p["uri"]) for p in parts], [table_uri(url, t) for t in tables]
    return [], []


def record_lineage(stage: str, spec: JobSpec, url: str, inputs: dict, result) -> None:
    """Hand the stage's lineage to Airflow's collector (a no-op when no lineage reader, such
    as the OpenLineage provider, is configured). A task's lineage is its own: a fresh
    collector, since `dag.test` (`python -m pipeline run`) runs every task in one process."""
    read, wrote = stage_lineage(stage, spec, url, inputs, result)
    get_hook_lineage_collector.cache_clear()
    collector, context = get_hook_lineage_collector(), StageHook(stage)
    for uri in read:
        collector.add_input_asset(context, uri=uri)
    for uri in wrote:
        collector.add_output_asset(context, uri=uri)
