-- Challengers in shadow (governance.shadow_runs): a candidate the gate would promote is
-- 'shadow' while it scores beside the champion into scoring.<job>_shadow; then it is judged on
-- the labels that arrived since. `shadow` holds that judgment, as JSON: {runs: [{run_id, as_of,
-- labelled, champion, challenger}], labelled, champion, challenger (metrics on the same keys),
-- gain, verdict (promoted, awaiting_approval, lost, no_labels, superseded), judged_at, judged_by_run}.
ALTER TABLE scoring.model_versions DROP CONSTRAINT IF EXISTS model_versions_status_check;
ALTER TABLE scoring.model_versions ADD CONSTRAINT model_versions_status_check
    CHECK (status IN ('candidate', 'champion', 'retired', 'rejected', 'awaiting_approval',
                      'shadow'));
ALTER TABLE scoring.model_versions ADD COLUMN IF NOT EXISTS shadow jsonb;
CREATE UNIQUE INDEX IF NOT EXISTS model_versions_one_shadow
    ON scoring.model_versions (job) WHERE status = 'shadow';
GRANT UPDATE (shadow) ON scoring.model_versions TO scoring_writer;
