-- Ownership, per-job deploy records, and run states a dead process can end in.
--
-- scoring_owner owns the schema and every object in it (migrate hands them over after each
-- migration); it is a NOLOGIN group role that deploy logins are members of. scoring_writer
-- keeps DML rights only: no CREATE on the schema, so nothing a run does is DDL.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scoring_owner') THEN
        CREATE ROLE scoring_owner NOLOGIN;
    END IF;
END
$$;
REVOKE CREATE ON SCHEMA scoring FROM scoring_writer;

-- One row per job: what its deployed objects are (sha256 of their rendered SQL) and the row
-- that publish and register lock FOR UPDATE to serialise themselves. Readers may only SELECT,
-- and a row lock needs UPDATE, so no reader can take it (an advisory lock anyone can take).
CREATE TABLE IF NOT EXISTS scoring.jobs (
    job             text PRIMARY KEY,
    objects_sha256  text,
    key_type        text,
    deployed_at     timestamptz
);
GRANT SELECT, INSERT, UPDATE ON scoring.jobs TO scoring_writer;
GRANT SELECT ON scoring.jobs TO scoring_reader;

-- A run's stages report while they work; a 'running' run that stopped reporting is
-- 'abandoned' (its process died), with when and why in `error`.
ALTER TABLE scoring.scoring_runs ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz;
ALTER TABLE scoring.scoring_runs ADD COLUMN IF NOT EXISTS predictions_pruned_at timestamptz;
ALTER TABLE scoring.scoring_runs DROP CONSTRAINT IF EXISTS scoring_runs_status_check;
ALTER TABLE scoring.scoring_runs ADD CONSTRAINT scoring_runs_status_check
    CHECK (status IN ('running', 'published', 'failed', 'abandoned'));
