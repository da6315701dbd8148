-- Least privilege: the pipeline writes as scoring_writer; analysts read as scoring_reader.
-- Both are NOLOGIN group roles: grant them to real login roles, e.g.
--   CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE scoring_reader;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scoring_writer') THEN
        CREATE ROLE scoring_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scoring_reader') THEN
        CREATE ROLE scoring_reader NOLOGIN;
    END IF;
END
$$;

GRANT USAGE, CREATE ON SCHEMA scoring TO scoring_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA scoring TO scoring_writer;
GRANT USAGE ON SCHEMA scoring TO scoring_reader;
GRANT SELECT ON scoring.scoring_runs, scoring.model_versions, scoring.snapshots,
    scoring.validation_results, scoring.drift_reports TO scoring_reader;
