-- Per-job prediction history and the analysts' view of the last published run.
-- Deployed by the owner when missing or changed (pipeline.stages.publish.ensure_job_objects),
-- never on every publish: a run only inserts rows. Filled in with quoted identifiers
-- ({predictions}, {shadow}, {changes}, {latest}, {lineage}), the job name as a literal ({job}) and the key type
-- from a fixed list ({key_type}), and what score means as a literal ({score_meaning}); safe to
-- run again. Columns are only ever added at the end (CREATE OR REPLACE VIEW allows no other).
-- {latest} shows what the job's row of scoring.jobs names: the rows of its base run (a full
-- run) less the keys changed since, plus those changes ({changes}: the keys incremental runs
-- rescored or dropped after the base run, one row each, replaced in the publish transaction).
-- A publish moves the state only forward in as_of, so a backfill never replaces today's run.
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
ALTER TABLE {predictions} ADD COLUMN IF NOT EXISTS probabilities jsonb;

-- What a challenger in shadow (governance.shadow_runs) scored beside the champion, per run.
CREATE TABLE IF NOT EXISTS {shadow} (
    run_id         text             NOT NULL,
    key            {key_type}       NOT NULL,
    score          double precision NOT NULL,
    label          text,
    probabilities  jsonb,
    model_version  integer          NOT NULL,
    as_of          timestamptz      NOT NULL,
    scored_at      timestamptz      NOT NULL,
    PRIMARY KEY (run_id, key)
);
COMMENT ON TABLE {shadow} IS
    'a challenger''s scores beside the champion''s, per run (governance.shadow_runs): never in '
    'the latest view; model_version is the challenger''s';

CREATE TABLE IF NOT EXISTS {changes} (
    key            {key_type}       PRIMARY KEY,
    run_id         text             NOT NULL,
    deleted        boolean          NOT NULL,
    score          double precision,
    label          text,
    model_version  integer,
    as_of          timestamptz      NOT NULL,
    scored_at      timestamptz      NOT NULL,
    probabilities  jsonb
);
COMMENT ON TABLE {changes} IS
    'the keys incremental runs rescored (deleted false) or dropped (deleted true) since the '
    'base run named in scoring.jobs; emptied when a full run publishes';

CREATE OR REPLACE VIEW {latest} AS
SELECT p.key, p.score, p.label, p.model_version, p.run_id, p.as_of, p.scored_at,
       p.probabilities
FROM {predictions} AS p
WHERE p.run_id = (SELECT j.base_run_id FROM scoring.jobs AS j WHERE j.job = {job})
  AND NOT EXISTS (SELECT 1 FROM {changes} AS c WHERE c.key = p.key)
UNION ALL
SELECT c.key, c.score, c.label, c.model_version, c.run_id, c.as_of, c.scored_at,
       c.probabilities
FROM {changes} AS c
WHERE NOT c.deleted;
COMMENT ON VIEW {latest} IS {latest_meaning};

COMMENT ON COLUMN {latest}.key IS 'the source row''s key';
COMMENT ON COLUMN {latest}.score IS {score_meaning};
COMMENT ON COLUMN {latest}.label IS 'classification: the predicted class; NULL for a regression';
COMMENT ON COLUMN {latest}.probabilities IS
    'classification: every class''s probability, e.g. probabilities->>''yes''; NULL for a regression';
COMMENT ON COLUMN {latest}.model_version IS 'the model version (scoring.model_versions) that scored it';
COMMENT ON COLUMN {latest}.run_id IS
    'the run that scored it (scoring.scoring_runs): an incremental run rescored only what changed';
COMMENT ON COLUMN {latest}.as_of IS 'the run''s cut-off: the data scored had timestamps before it';
COMMENT ON COLUMN {latest}.scored_at IS 'when the run scored it';

GRANT SELECT, INSERT, UPDATE, DELETE ON {predictions}, {changes}, {shadow} TO scoring_writer;
GRANT SELECT ON {latest} TO scoring_writer;
GRANT SELECT ON {predictions}, {changes}, {latest}, {shadow} TO scoring_reader;

-- Which data, model and code made each latest prediction ({lineage}). The snapshots are the
-- run's own and the model's own, by id (another snapshot may hold the same bytes elsewhere);
-- a uri is NULL when that snapshot was pruned, or for rows from before snapshot ids
-- (`python -m pipeline lineage` then looks them up by sha256).
CREATE OR REPLACE VIEW {lineage} AS
SELECT l.key, l.score, l.label, l.run_id, r.dag_run_id, l.as_of, l.scored_at,
       r.scoring_snapshot_sha256, s.uri AS scoring_snapshot_uri,
       l.model_version, m.artifact_sha256, m.training_snapshot_sha256,
       m.primary_metric, m.metrics AS model_metrics, m.decision_reason,
       r.validation, r.code_version AS run_code_version, m.code_version AS model_code_version,
       r.spec_sha256, r.suites_sha256,
       r.scoring_snapshot_id, m.training_snapshot_id, t.uri AS training_snapshot_uri
FROM {latest} AS l
JOIN scoring.scoring_runs AS r ON r.job = {job} AND r.run_id = l.run_id
JOIN scoring.model_versions AS m ON m.job = {job} AND m.version = l.model_version
LEFT JOIN scoring.snapshots AS s ON s.id = r.scoring_snapshot_id
LEFT JOIN scoring.snapshots AS t ON t.id = m.training_snapshot_id;

GRANT SELECT ON {lineage} TO scoring_reader;

-- Drift per run, feature and statistic ({drift}), newest run first.
CREATE OR REPLACE VIEW {drift} AS
SELECT d.run_id, r.as_of, r.model_version, d.feature, d.statistic, d.value, d.watch,
       d.threshold, d.level, d.computed_at, d.population, d.rows, d.decides, d.alert
FROM scoring.drift_reports AS d
JOIN scoring.scoring_runs AS r ON r.job = d.job AND r.run_id = d.run_id
WHERE d.job = {job};
COMMENT ON VIEW {drift} IS 'drift of each run''s scored data from its model''s training data';
COMMENT ON COLUMN {drift}.feature IS 'a feature, or (score) for the score''s own drift';
COMMENT ON COLUMN {drift}.statistic IS
    'psi (population stability index), ks (numeric), unseen_share (categorical: share of '
    'scored rows with a category never seen in training), null_rate_change (absolute)';
COMMENT ON COLUMN {drift}.level IS 'ok, watch (psi at or above watch) or alert (above threshold)';
COMMENT ON COLUMN {drift}.population IS
    'all: the whole scored table; new: the rows new or changed since the previous published '
    'run; changed: all an incremental run rescored (since its previous run''s as_of less lookback)';
COMMENT ON COLUMN {drift}.rows IS 'the rows of that population';
COMMENT ON COLUMN {drift}.decides IS
    'this population decides the run''s alerts (new when it has monitoring.min_new_rows rows)';
COMMENT ON COLUMN {drift}.alert IS 'a drift alert of the run (level alert where decides)';

-- Realised performance per published run and metric, once labels arrived ({performance}).
CREATE OR REPLACE VIEW {performance} AS
SELECT p.run_id, r.as_of, p.model_version, p.metric, p.value, p.holdout, p.labelled, p.scored,
       p.trusted, p.alert, p.computed_at, p.eligible, p.worse_by, p.tolerance
FROM scoring.model_performance AS p
JOIN scoring.scoring_runs AS r ON r.job = p.job AND r.run_id = p.run_id
WHERE p.job = {job};
COMMENT ON VIEW {performance} IS
    'how right each published run was, over the keys labelled after its as_of';
COMMENT ON COLUMN {performance}.value IS 'the metric over the labelled keys';
COMMENT ON COLUMN {performance}.holdout IS 'the same metric on the model''s holdout at training';
COMMENT ON COLUMN {performance}.labelled IS 'keys whose label arrived after the run''s as_of';
COMMENT ON COLUMN {performance}.trusted IS
    'labelled reached monitoring.performance.min_labelled: the figure may alert';
COMMENT ON COLUMN {performance}.alert IS
    'the primary metric is worse than holdout by more than monitoring.performance.tolerance';
COMMENT ON COLUMN {performance}.eligible IS
    'keys the run scored that had no label at its as_of: those realised performance can judge';
COMMENT ON COLUMN {performance}.worse_by IS 'how much worse than holdout (negative: better)';
COMMENT ON COLUMN {performance}.tolerance IS 'monitoring.performance.tolerance when judged';

-- Every alert of the job's runs ({alerts}): drift, realised performance, validation warnings.
CREATE OR REPLACE VIEW {alerts} AS
SELECT a.run_id, r.as_of, a.kind, a.subject, a.statistic, a.value, a.threshold, a.population,
       a.message, a.raised_at
FROM scoring.alerts AS a
LEFT JOIN scoring.scoring_runs AS r ON r.job = a.job AND r.run_id = a.run_id
WHERE a.job = {job};
COMMENT ON VIEW {alerts} IS
    'every alert raised for the job, once each: what the summary, report and webhook show';
COMMENT ON COLUMN {alerts}.run_id IS
    'the run that raised it; NULL: raised by `python -m pipeline performance` between runs';

GRANT SELECT ON {drift}, {performance}, {alerts} TO scoring_reader;
