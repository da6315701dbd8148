-- Approval of promotions (governance.approval): a candidate the gate would promote waits as
-- 'awaiting_approval' until a person named by the spec answers in Airflow's Required Actions
-- (or the request times out). `approval` holds the request and its answer, as JSON:
-- {conditions, requested_by_run, requested_at, deadline, evidence, verdict (approved,
-- rejected, timed_out, superseded), answered_by {id, name}, answered_at, reason}.
ALTER TABLE scoring.model_versions DROP CONSTRAINT IF EXISTS model_versions_status_check;
ALTER TABLE scoring.model_versions ADD CONSTRAINT model_versions_status_check
    CHECK (status IN ('candidate', 'champion', 'retired', 'rejected', 'awaiting_approval'));
ALTER TABLE scoring.model_versions ADD COLUMN IF NOT EXISTS approval jsonb;
-- at most one request waits per job: a newer one supersedes it
CREATE UNIQUE INDEX IF NOT EXISTS model_versions_one_awaiting
    ON scoring.model_versions (job) WHERE status = 'awaiting_approval';
GRANT UPDATE (approval) ON scoring.model_versions TO scoring_writer;
