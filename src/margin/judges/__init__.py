"""Model-graded checks: their trust in a run and their agreement with human labels."""
