"""Validation of snapshots with Great Expectations 1.x: the job's suites (`suites`), GX run on
a snapshot (`gx`), and failures described for people (`findings`)."""
