-- Incremental scoring. The run `<job>_latest` shows is named on the job's row instead of
-- being looked up by as_of at every read: `latest_run_id`, the last run that moved what analysts
-- see (a full run, or an incremental run's changes on top of one), and `base_run_id`, the full
-- run whose rows the changes since it (scoring.<job>_changes) overlay. A run's `scope` says
-- whether it scored in full or only what changed, and why.
ALTER TABLE scoring.jobs ADD COLUMN IF NOT EXISTS latest_run_id text;
ALTER TABLE scoring.jobs ADD COLUMN IF NOT EXISTS base_run_id text;
ALTER TABLE scoring.scoring_runs ADD COLUMN IF NOT EXISTS scope jsonb;

-- what every job's view showed until now: its published run with the latest as_of up to now
UPDATE scoring.jobs AS j
SET latest_run_id = r.run_id, base_run_id = r.run_id
FROM (
    SELECT DISTINCT ON (job) job, run_id
    FROM scoring.scoring_runs
    WHERE status = 'published' AND as_of <= now()
    ORDER BY job, as_of DESC, published_at DESC
) AS r
WHERE j.job = r.job AND j.latest_run_id IS NULL;
