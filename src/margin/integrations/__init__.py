"""margin inside other tools: the pytest plugin and the promptfoo importer."""
