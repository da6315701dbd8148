-- The scoring schema: one row per snapshot, validation, model version, run and drift check.
-- Per-job prediction tables and views are created from job_objects.sql when a job first publishes.
CREATE SCHEMA IF NOT EXISTS scoring;

CREATE TABLE IF NOT EXISTS scoring.snapshots (
    job          text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('training', 'scoring')),
    as_of        timestamptz NOT NULL,
    row_count    bigint      NOT NULL,
    sha256       text        NOT NULL,
    uri          text        NOT NULL,
    query        text        NOT NULL,
    manifest     jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, kind, as_of, sha256)
);
CREATE INDEX IF NOT EXISTS snapshots_sha256 ON scoring.snapshots (sha256);

CREATE TABLE IF NOT EXISTS scoring.validation_results (
    job              text        NOT NULL,
    run_id           text        NOT NULL,
    suite            text        NOT NULL,
    snapshot_sha256  text        NOT NULL,
    success          boolean     NOT NULL,
    critical_failed  integer     NOT NULL,
    warnings_failed  integer     NOT NULL,
    statistics       jsonb       NOT NULL,
    failures         jsonb       NOT NULL,
    result_uri       text        NOT NULL,
    docs_uri         text,
    validated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, run_id, suite)
);

CREATE TABLE IF NOT EXISTS scoring.model_versions (
    job                      text        NOT NULL,
    version                  integer     NOT NULL,
    run_id                   text        NOT NULL,
    status                   text        NOT NULL
        CHECK (status IN ('candidate', 'champion', 'retired', 'rejected')),
    artifact_uri             text        NOT NULL,
    artifact_sha256          text        NOT NULL,
    training_snapshot_sha256 text        NOT NULL,
    estimator                text        NOT NULL,
    params                   jsonb       NOT NULL,
    primary_metric           text        NOT NULL,
    metrics                  jsonb       NOT NULL,
    champion_version         integer,
    champion_metrics         jsonb,
    decision_reason          text        NOT NULL,
    forced                   boolean     NOT NULL DEFAULT false,
    code_version             text        NOT NULL,
    library_versions         jsonb       NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    promoted_at              timestamptz,
    PRIMARY KEY (job, version),
    UNIQUE (job, run_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS model_versions_one_champion
    ON scoring.model_versions (job) WHERE status = 'champion';

CREATE TABLE IF NOT EXISTS scoring.scoring_runs (
    job                      text        NOT NULL,
    run_id                   text        NOT NULL,
    dag_run_id               text        NOT NULL,
    logical_date             timestamptz,
    as_of                    timestamptz NOT NULL,
    model_version            integer,
    training_snapshot_sha256 text,
    scoring_snapshot_sha256  text,
    validation               jsonb,
    rows_scored              bigint,
    status                   text        NOT NULL CHECK (status IN ('running', 'published', 'failed')),
    error                    text,
    code_version             text,
    timings                  jsonb,
    started_at               timestamptz NOT NULL DEFAULT now(),
    published_at             timestamptz,
    PRIMARY KEY (job, run_id)
);
CREATE INDEX IF NOT EXISTS scoring_runs_published
    ON scoring.scoring_runs (job, as_of DESC, published_at DESC) WHERE status = 'published';

CREATE TABLE IF NOT EXISTS scoring.drift_reports (
    job          text             NOT NULL,
    run_id       text             NOT NULL,
    feature      text             NOT NULL,
    statistic    text             NOT NULL,
    value        double precision,
    threshold    double precision NOT NULL,
    alert        boolean          NOT NULL,
    computed_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (job, run_id, feature)
);
