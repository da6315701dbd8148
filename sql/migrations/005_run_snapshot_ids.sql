-- Snapshot ids: a run and a model point at the very snapshots they used. A content hash is not
-- enough: `suggest-expectations`, or a run at another as_of, can write the same bytes to
-- another folder, and a lookup by sha256 could then name that folder.
--
-- A sequence of its own rather than an identity column: an identity's sequence is linked to
-- its table, and hand_over.sql cannot change such a sequence's owner by itself.
CREATE SEQUENCE IF NOT EXISTS scoring.snapshot_ids AS bigint;
ALTER TABLE scoring.snapshots
    ADD COLUMN IF NOT EXISTS id bigint NOT NULL DEFAULT nextval('scoring.snapshot_ids');
CREATE UNIQUE INDEX IF NOT EXISTS snapshots_id ON scoring.snapshots (id);
GRANT USAGE ON SEQUENCE scoring.snapshot_ids TO scoring_writer;  -- the DEFAULT on inserts

-- The snapshots a run took, set by its snapshot stages (so a failed run points at them too)
-- and again when it is published. training_snapshot_id is the run's own training snapshot
-- even when it kept the champion; the model's is model_versions.training_snapshot_id.
-- NULL on rows written before this migration: readers then fall back to the sha256 columns.
ALTER TABLE scoring.scoring_runs
    ADD COLUMN IF NOT EXISTS training_snapshot_id bigint,
    ADD COLUMN IF NOT EXISTS scoring_snapshot_id  bigint;
ALTER TABLE scoring.model_versions ADD COLUMN IF NOT EXISTS training_snapshot_id bigint;
