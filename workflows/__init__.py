"""Temporal workflows and the types shared with the API, listener and worker."""
