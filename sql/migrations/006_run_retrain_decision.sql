-- Each run records whether it fitted a candidate and why (decide_retrain), so its summary and
-- an analyst can tell a run that kept the champion by policy from one whose candidate lost.
ALTER TABLE scoring.scoring_runs ADD COLUMN IF NOT EXISTS retrain jsonb;
