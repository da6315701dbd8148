-- Monitoring: several drift statistics per feature, realised performance once labels arrive,
-- and what a run did about its alerts.

-- A feature now has one row per statistic (psi, ks, null_rate_change, unseen_share); the
-- score's own drift is feature '(score)'. `level` is ok, watch or alert.
ALTER TABLE scoring.drift_reports DROP CONSTRAINT IF EXISTS drift_reports_pkey;
ALTER TABLE scoring.drift_reports ADD PRIMARY KEY (job, run_id, feature, statistic);
ALTER TABLE scoring.drift_reports ADD COLUMN IF NOT EXISTS level text;
ALTER TABLE scoring.drift_reports ADD COLUMN IF NOT EXISTS watch double precision;

-- How right a published run's predictions were, once the labels arrived: per run and metric,
-- over the keys whose label was unknown at the run's as_of; `labelled` keys counted, `trusted`
-- once at least the spec's minimum arrived; `holdout` is the model's own holdout figure.
CREATE TABLE IF NOT EXISTS scoring.model_performance (
    job            text             NOT NULL,
    run_id         text             NOT NULL,
    model_version  integer          NOT NULL,
    metric         text             NOT NULL,
    value          double precision,
    holdout        double precision,
    labelled       bigint           NOT NULL,
    scored         bigint           NOT NULL,
    trusted        boolean          NOT NULL,
    alert          boolean          NOT NULL,
    computed_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (job, run_id, metric)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON scoring.model_performance TO scoring_writer;
GRANT SELECT ON scoring.model_performance TO scoring_reader;

-- What monitoring found and did (alerts, the policy's action) and the run's HTML report.
ALTER TABLE scoring.scoring_runs ADD COLUMN IF NOT EXISTS monitoring jsonb;
ALTER TABLE scoring.scoring_runs ADD COLUMN IF NOT EXISTS report_uri text;
