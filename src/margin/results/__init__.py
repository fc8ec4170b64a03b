"""results.json: its row types (defined once), the document, and the score stage."""
