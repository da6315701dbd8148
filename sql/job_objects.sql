-- Per-job prediction history and the analysts' view of the last published run.
-- Deployed by the owner when missing or changed (pipeline.stages.publish.ensure_job_objects),
-- never on every publish: a run only inserts rows. Filled in with quoted identifiers
-- ({predictions}, {latest}, {lineage}), the job name as a literal ({job}) and the key type
-- from a fixed list ({key_type}); safe to run again.
-- {latest} shows the published run with the latest as_of that is not in the future, so no
-- single run can freeze it; a backfill (an older as_of) never replaces today's run.
CREATE TABLE IF NOT EXISTS {predictions} (
    run_id         text             NOT NULL,
    key            {key_type}       NOT NULL,
    score          double precision NOT NULL,
    label          text,
    model_version  integer          NOT NULL,
    as_of          timestamptz      NOT NULL,
    scored_at      timestamptz      NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE OR REPLACE VIEW {latest} AS
SELECT p.key, p.score, p.label, p.model_version, p.run_id, p.as_of, p.scored_at
FROM {predictions} AS p
WHERE p.run_id = (
    SELECT r.run_id
    FROM scoring.scoring_runs AS r
    WHERE r.job = {job} AND r.status = 'published' AND r.as_of <= now()
    ORDER BY r.as_of DESC, r.published_at DESC
    LIMIT 1
);

GRANT SELECT, INSERT, UPDATE, DELETE ON {predictions} TO scoring_writer;
GRANT SELECT ON {predictions}, {latest} TO scoring_reader;

-- Which data, model and code made each latest prediction ({lineage}).
CREATE OR REPLACE VIEW {lineage} AS
SELECT l.key, l.score, l.label, l.run_id, r.dag_run_id, l.as_of, l.scored_at,
       r.scoring_snapshot_sha256, s.uri AS scoring_snapshot_uri,
       l.model_version, m.artifact_sha256, m.training_snapshot_sha256,
       m.primary_metric, m.metrics AS model_metrics, m.decision_reason,
       r.validation, r.code_version AS run_code_version, m.code_version AS model_code_version,
       r.spec_sha256, r.suites_sha256
FROM {latest} AS l
JOIN scoring.scoring_runs AS r ON r.job = {job} AND r.run_id = l.run_id
JOIN scoring.model_versions AS m ON m.job = {job} AND m.version = l.model_version
LEFT JOIN LATERAL (
    SELECT uri FROM scoring.snapshots
    WHERE job = {job} AND sha256 = r.scoring_snapshot_sha256 LIMIT 1
) AS s ON true;

GRANT SELECT ON {lineage} TO scoring_reader;
