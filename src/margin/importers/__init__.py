"""Bring checks kept in other tools into margin suites (`margin import …`)."""
