-- The least each role needs (issue: the writer could DELETE run records and UPDATE any column
-- of a model version). The pipeline's logins (scoring_writer) keep what runs do:
-- - scoring_runs: insert and update a run's own row; never delete one (history is evidence);
-- - model_versions: register a version and change its status and decision; never its
--   identity (job, version, the run that made it) or when it was created;
-- - schema_migrations: read which migrations are applied; only the owner applies them.
REVOKE DELETE ON scoring.scoring_runs FROM scoring_writer;
REVOKE UPDATE ON scoring.model_versions FROM scoring_writer;
REVOKE DELETE ON scoring.model_versions FROM scoring_writer;
GRANT UPDATE (status, artifact_uri, artifact_sha256, training_snapshot_sha256,
              training_snapshot_id, estimator, params, primary_metric, metrics,
              champion_version, champion_metrics, decision_reason, forced, code_version,
              library_versions, promoted_at)
    ON scoring.model_versions TO scoring_writer;
REVOKE INSERT, UPDATE, DELETE ON scoring.schema_migrations FROM scoring_writer;
