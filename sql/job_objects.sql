-- Per-job prediction history and the analysts' view of the last published run.
-- Filled in by pipeline.publish with quoted identifiers ({predictions}, {latest}) and the
-- job name as a literal ({job}), the key type from a fixed list ({key_type}); safe to run again.
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
    WHERE r.job = {job} AND r.status = 'published'
    ORDER BY r.as_of DESC, r.published_at DESC
    LIMIT 1
);

GRANT SELECT, INSERT, UPDATE, DELETE ON {predictions} TO scoring_writer;
GRANT SELECT ON {predictions}, {latest} TO scoring_reader;
