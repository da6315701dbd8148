-- Snapshots of a job older than the cut-off that no champion, no candidate awaiting approval
-- and no published run whose predictions are still kept points to.
-- Parameters: %(job)s, %(cutoff)s.
SELECT kind, as_of, sha256, uri
FROM scoring.snapshots
WHERE job = %(job)s
  AND as_of < %(cutoff)s
  AND sha256 NOT IN (
      SELECT training_snapshot_sha256 FROM scoring.model_versions
      WHERE job = %(job)s AND status IN ('champion', 'awaiting_approval')
      UNION
      SELECT training_snapshot_sha256 FROM scoring.scoring_runs
      WHERE job = %(job)s AND status = 'published' AND training_snapshot_sha256 IS NOT NULL
        AND predictions_pruned_at IS NULL
      UNION
      SELECT scoring_snapshot_sha256 FROM scoring.scoring_runs
      WHERE job = %(job)s AND status = 'published' AND predictions_pruned_at IS NULL
  )
ORDER BY as_of
