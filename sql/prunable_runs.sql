-- Published runs of a job whose prediction rows retention lets go: not among the newest
-- %(keep_runs)s runs and, when %(cutoff)s is set, with an as_of before it; never the run
-- `<job>_latest` shows. Parameters: %(job)s, %(keep_runs)s, %(cutoff)s.
WITH published AS (
    SELECT run_id, as_of, predictions_pruned_at,
           row_number() OVER (ORDER BY as_of DESC, published_at DESC) AS newest
    FROM scoring.scoring_runs
    WHERE job = %(job)s AND status = 'published'
), latest AS (
    SELECT run_id FROM published WHERE as_of <= now() ORDER BY newest LIMIT 1
)
SELECT run_id
FROM published
WHERE predictions_pruned_at IS NULL
  AND newest > %(keep_runs)s
  AND (%(cutoff)s::timestamptz IS NULL OR as_of < %(cutoff)s::timestamptz)
  AND run_id NOT IN (SELECT run_id FROM latest)
ORDER BY as_of
