"""Commands that keep a job healthy: prune (retention), erase (personal data) and retire (a
broken champion)."""

from pipeline import config
from pipeline.cli.connect import migrated_warehouse, warehouse
from pipeline.errors import PipelineError
from pipeline.maintenance.retention import keep_days, prune_snapshots
from pipeline.model.registry import retire_champion
from pipeline.spec import find_spec
from pipeline.stages.erasure import process_erasures, request_erasure
from pipeline.stages.publish import prune_predictions


def cmd_prune(args) -> int:
    """Delete prediction history beyond the job's retention, then old unreferenced snapshots."""
    spec = find_spec(args.job, config.jobs_dir())
    url = warehouse()
    runs = prune_predictions(url, spec)
    print(f"{spec.name}: pruned the predictions of {len(runs)} run(s) ({spec.retention})")
    days = args.keep_days if args.keep_days is not None else keep_days()
    pruned = prune_snapshots(url, spec.name, days)
    print(f"{spec.name}: pruned {len(pruned)} snapshot(s) older than {days} days")
    return 0


def cmd_erase(args) -> int:
    """File an erasure request for each --key, then carry out every pending request."""
    spec = find_spec(args.job, config.jobs_dir())
    url = migrated_warehouse()
    if args.keys:
        if not args.reason:
            raise PipelineError(f"job {spec.name}: say why with --reason (kept in the record)")
        ids = request_erasure(url, spec.name, args.keys, args.reason)
        print(f"{spec.name}: erasure request(s) {ids} filed")
    done = process_erasures(url, spec, by="python -m pipeline erase")
    if done is None:
        print(f"{spec.name}: no pending erasure request")
        return 0
    print(
        f"{spec.name}: erased {len(done.keys)} key(s) (requests {done.request_ids}): "
        f"{done.rows_removed} row(s) from {len(done.files)} file(s), "
        f"{done.predictions_deleted} prediction row(s), "
        f"{done.pages_redacted} Data Docs page(s) redacted"
    )
    for rewrite in done.files:
        print(
            f"  {rewrite.kind}: -{rewrite.removed.num_rows} row(s), sha256 "
            f"{rewrite.old_sha256[:16]} -> {rewrite.new_sha256[:16]}"
        )
    for version in done.models_flagged:
        print(f"{spec.name}: model v{version} was trained on erased rows: flagged")
    return 0


def cmd_retire(args) -> int:
    """Retire a job's champion; the newest earlier champion whose file verifies takes over."""
    spec = find_spec(args.job, config.jobs_dir())
    result = retire_champion(migrated_warehouse(), spec.name, args.reason)
    print(f"{spec.name}: v{result['retired']} retired ({args.reason})")
    for passed in result["skipped"]:
        print(f"{spec.name}: v{passed['version']} passed over: {passed['reason']}")
    if result["champion"] is None:
        print(f"{spec.name}: no champion now; the next run trains one")
    else:
        print(f"{spec.name}: v{result['champion']} is champion again")
    return 0
