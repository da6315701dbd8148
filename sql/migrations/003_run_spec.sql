-- Each run records the job spec it froze at its start (resolved, as JSON) and the sha256 of
-- that spec and of the suites it validated with, so an edit to either shows up in lineage.
ALTER TABLE scoring.scoring_runs
    ADD COLUMN IF NOT EXISTS spec          jsonb,
    ADD COLUMN IF NOT EXISTS spec_sha256   text,
    ADD COLUMN IF NOT EXISTS suites_sha256 text;
