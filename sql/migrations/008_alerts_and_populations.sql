-- One alert story: every alert a run (or `python -m pipeline performance`) raised, stored once;
-- the summary, the report, the webhook and email, and `retrain.policy: on_drift` read these rows.
CREATE TABLE IF NOT EXISTS scoring.alerts (
    id          bigserial        PRIMARY KEY,
    job         text             NOT NULL,
    run_id      text,            -- the run that raised it; NULL: the performance command
    kind        text             NOT NULL
        CHECK (kind IN ('drift', 'performance', 'validation_warning')),
    subject     text             NOT NULL,  -- a feature, (score), a judged run, or a suite
    statistic   text,                       -- psi, ks, ...; a metric; an expectation
    value       double precision,
    threshold   double precision,
    population  text,                       -- drift: new or all
    message     text             NOT NULL,
    raised_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alerts_by_run ON scoring.alerts (job, run_id);
GRANT SELECT, INSERT, DELETE ON scoring.alerts TO scoring_writer;
GRANT USAGE ON SEQUENCE scoring.alerts_id_seq TO scoring_writer;
GRANT SELECT ON scoring.alerts TO scoring_reader;

-- Drift on two populations: the whole scored table (all) and the rows new or changed since the
-- previous published run (new); `decides` marks the one alerts come from.
ALTER TABLE scoring.drift_reports ADD COLUMN IF NOT EXISTS population text NOT NULL DEFAULT 'all';
ALTER TABLE scoring.drift_reports ADD COLUMN IF NOT EXISTS rows bigint;
ALTER TABLE scoring.drift_reports ADD COLUMN IF NOT EXISTS decides boolean NOT NULL DEFAULT true;
ALTER TABLE scoring.drift_reports DROP CONSTRAINT IF EXISTS drift_reports_pkey;
ALTER TABLE scoring.drift_reports ADD PRIMARY KEY (job, run_id, feature, statistic, population);

-- Realised performance over the keys that were unlabelled at the run's as_of (eligible), and
-- how far the metric fell from the model's holdout figure (positive: worse).
ALTER TABLE scoring.model_performance ADD COLUMN IF NOT EXISTS eligible bigint;
ALTER TABLE scoring.model_performance ADD COLUMN IF NOT EXISTS worse_by double precision;
ALTER TABLE scoring.model_performance ADD COLUMN IF NOT EXISTS tolerance double precision;
