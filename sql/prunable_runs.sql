-- Published runs of a job whose prediction rows retention lets go: not among the newest
-- %(keep_runs)s runs and, when %(cutoff)s is set, with an as_of before it; never the run
-- `<job>_latest` shows nor the full run under it. Parameters: %(job)s, %(keep_runs)s, %(cutoff)s.
WITH published AS (
    SELECT run_id, as_of, predictions_pruned_at,
           row_number() OVER (ORDER BY as_of DESC, published_at DESC) AS newest
    FROM scoring.scoring_runs
    WHERE job = %(job)s AND status = 'published'
), latest AS (
    SELECT unnest(ARRAY[latest_run_id, base_run_id]) AS run_id
    FROM scoring.jobs WHERE job = %(job)s
)
SELECT run_id
FROM published
WHERE predictions_pruned_at IS NULL
  AND newest > %(keep_runs)s
  AND (%(cutoff)s::timestamptz IS NULL OR as_of < %(cutoff)s::timestamptz)
  AND run_id NOT IN (SELECT run_id FROM latest WHERE run_id IS NOT NULL)
ORDER BY as_of
