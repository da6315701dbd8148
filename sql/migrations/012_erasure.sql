-- Erasure of personal data: requests to remove keys from everything a job stored, and what each
-- erasure rewrote. A request is pending until processed (by `python -m pipeline erase` or by the
-- job's next run); every snapshot file rewritten without erased rows is one row of
-- scoring.erasures (old and new sha256, rows removed), so `reproduce` and `lineage` can say
-- what was removed, when, why and at whose request. A model trained on an erased row is
-- flagged on its version (`erased_rows`, `erasure_flagged_at`).
CREATE TABLE IF NOT EXISTS scoring.erasure_requests (
    id            bigserial    PRIMARY KEY,
    job           text         NOT NULL,
    key           text         NOT NULL,   -- the key as text (any key type)
    reason        text         NOT NULL CHECK (length(trim(reason)) > 0),
    requested_by  text         NOT NULL DEFAULT current_user,
    requested_at  timestamptz  NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    processed_by  text                     -- the command, or the run that processed it
);
CREATE INDEX IF NOT EXISTS erasure_requests_pending
    ON scoring.erasure_requests (job) WHERE processed_at IS NULL;

CREATE TABLE IF NOT EXISTS scoring.erasures (
    id            bigserial    PRIMARY KEY,
    job           text         NOT NULL,
    snapshot_id   bigint       NOT NULL,
    kind          text         NOT NULL,   -- training, scoring, left (an incremental run's keys
                                           -- that left), holdout (a model's holdout scores)
    uri           text         NOT NULL,
    old_sha256    text         NOT NULL,
    new_sha256    text         NOT NULL,
    rows_removed  bigint       NOT NULL,
    request_ids   bigint[]     NOT NULL,
    reason        text         NOT NULL,
    erased_at     timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS erasures_by_snapshot ON scoring.erasures (job, snapshot_id);

ALTER TABLE scoring.model_versions ADD COLUMN IF NOT EXISTS erased_rows bigint NOT NULL DEFAULT 0;
ALTER TABLE scoring.model_versions ADD COLUMN IF NOT EXISTS erasure_flagged_at timestamptz;

-- a run processes pending requests as the writer: it rewrites snapshots, deletes the keys'
-- predictions and redacts sampled values in stored results and alerts
GRANT SELECT, INSERT, UPDATE ON scoring.erasure_requests TO scoring_writer;
GRANT SELECT, INSERT ON scoring.erasures TO scoring_writer;
GRANT USAGE ON SEQUENCE scoring.erasure_requests_id_seq, scoring.erasures_id_seq TO scoring_writer;
GRANT UPDATE (erased_rows, erasure_flagged_at) ON scoring.model_versions TO scoring_writer;
GRANT UPDATE (message) ON scoring.alerts TO scoring_writer;
GRANT SELECT ON scoring.erasure_requests, scoring.erasures TO scoring_reader;
