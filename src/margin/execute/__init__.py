"""Execute: a run directory's session, the runner (concurrency, retries, cache, budget),
progress, adaptive rounds, policy runs and shards. Writes the journal."""
