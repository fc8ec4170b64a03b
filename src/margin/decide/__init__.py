"""Decide from scores: rank bands, the recommendation, delivery policies, regressions, and
the recommendation in words."""
