-- The histograms monitoring tallied (both sides' counts per bin, with bin labels), on each
-- feature's psi row: the run report draws them without reading any snapshot again.
ALTER TABLE scoring.drift_reports ADD COLUMN IF NOT EXISTS histogram jsonb;
