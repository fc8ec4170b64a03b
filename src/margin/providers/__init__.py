"""Model providers: the litellm seam (`gateway`), the fake provider and the fake HTTP server."""
