"""Suites: the Suite → Task → Case model, safe YAML loading with lines, sandboxed templates,
and reviewed paraphrase locks."""
