"""The files between run and score: the journal's record format and the run directory."""
